from django.apps import AppConfig


class AccuracyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accuracy"

    def ready(self) -> None:
        from phr.signals import entries_changed

        from .checks import load_rules
        from .tasks import check_after_commit

        load_rules()
        entries_changed.connect(check_after_commit, dispatch_uid="accuracy-checks")
