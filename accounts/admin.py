from django.contrib import admin

from .models import Membership, PatientLink, User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("email", "role", "is_active", "is_staff")
    search_fields = ("email",)
    exclude = ("password",)


admin.site.register(Membership)
admin.site.register(PatientLink)
