"""Django's admin, behind the portal's own door.

From the admin a superuser can link any account to any record, so it gets no sign-in
of its own: its login page sends everyone to the portal's sign-in (allauth, with its
rate limits and the second factor), and it opens only for active staff users with a
second factor enrolled, like the staff pages. Password changes and sign-out are the
portal's too. It is mounted only when ADMIN_ENABLED is set (config.urls); accounts.admin_apps
makes it admin.site.
"""

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


class PortalAdminSite(admin.AdminSite):
    site_header = "Patient Record Portal administration"
    site_title = "Patient Record Portal administration"

    def has_permission(self, request) -> bool:
        """Active staff users with a second factor enrolled (accounts.access.has_mfa)."""
        from accounts.access import has_mfa

        return super().has_permission(request) and has_mfa(request.user)

    def login(self, request, extra_context=None):
        """No password is taken here: anyone not let in is sent to the portal's sign-in,
        a signed-in user without a second factor to set one up, anyone else is told the
        admin does not exist for them."""
        from accounts.access import has_mfa, set_up_second_factor

        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(self._next(request), reverse("account_login"))
        if user.is_active and user.is_staff and not has_mfa(user):
            return set_up_second_factor(request)
        if self.has_permission(request):
            return redirect(self._next(request))
        raise Http404

    def logout(self, request, extra_context=None):
        return redirect("account_logout")

    def password_change(self, request, extra_context=None):
        return redirect("account_change_password")

    def password_change_done(self, request, extra_context=None):
        return redirect("account_change_password")

    def _next(self, request) -> str:
        """Where to go after signing in: the admin page asked for, or the admin's index."""
        index = reverse("admin:index", current_app=self.name)
        wanted = request.GET.get("next", "")
        safe = url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()})
        return wanted if safe and wanted.startswith(index) else index
