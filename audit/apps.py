import os
import sys

from django.apps import AppConfig
from django.conf import settings


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"

    def ready(self) -> None:
        # `make run` has no beat: runserver's serving process seals from a thread. Not the
        # autoreloader's parent (RUN_MAIN unset there), not any other command.
        serving = len(sys.argv) > 1 and sys.argv[1] == "runserver"
        reloader_child = os.environ.get("RUN_MAIN") == "true" or "--noreload" in sys.argv
        if settings.AUDIT_SEAL_IN_PROCESS and serving and reloader_child:
            from .ledger import InProcessSealer

            InProcessSealer().start()
