from django.apps import AppConfig


class AccuracyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accuracy"
