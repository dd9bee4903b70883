"""The API's own records: which OAuth 2.0 clients are organisations' systems."""

from django.db import models
from oauth2_provider.settings import oauth2_settings


class SystemClient(models.Model):
    """An organisation's system: an OAuth 2.0 client (client credentials) that acts for
    exactly one member organisation, and only ever for that one."""

    application = models.OneToOneField(
        oauth2_settings.APPLICATION_MODEL, on_delete=models.CASCADE, related_name="system_client"
    )
    organisation = models.ForeignKey(
        "phr.Organisation", on_delete=models.PROTECT, related_name="system_clients"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.application.name} for {self.organisation}"


class ProxyApp(models.Model):
    """An app a proxy connected to the record of someone they act for (SMART's
    launch/patient: the proxy chose the record on the consent screen).

    An app acts for one record per person: without a row, the user's own record; with
    one, the grant's patient, as the proxy acting for them under that grant, and only
    while the grant is active. Choosing another record for the same app stops its access
    to the first (api.oauth_server.choose_record)."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    application = models.ForeignKey(
        oauth2_settings.APPLICATION_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    grant = models.ForeignKey("accounts.ProxyAccess", on_delete=models.CASCADE, related_name="apps")
    chosen_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "application"], name="one_record_per_app_and_user")
        ]

    def __str__(self) -> str:
        return f"{self.application_id} for grant {self.grant_id}"
