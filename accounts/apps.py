from django.apps import AppConfig
from django.db.models.signals import post_migrate


def create_cache_table(using: str = "default", **kwargs) -> None:
    """The database cache's table (CACHE_URL db://, the embedded default), made by every
    `migrate`: the sign-in attempt counters live there. Nothing to do for another cache."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self):
        from . import audit_hooks

        audit_hooks.connect()
        post_migrate.connect(create_cache_table, sender=self)
