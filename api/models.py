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
