"""django.contrib.admin's app, with accounts.admin_site.PortalAdminSite as admin.site.

A module of its own: INSTALLED_APPS imports it before any model can be imported."""

from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    default_site = "accounts.admin_site.PortalAdminSite"
