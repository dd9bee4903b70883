from django.apps import AppConfig


class PhrConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "phr"
