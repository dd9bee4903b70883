from django.contrib import admin

from .models import SystemClient


@admin.register(SystemClient)
class SystemClientAdmin(admin.ModelAdmin):
    """Which OAuth application is which organisation's system (client credentials)."""

    list_display = ("application", "organisation", "created_at")
    list_select_related = ("application", "organisation")
    raw_id_fields = ("application",)
