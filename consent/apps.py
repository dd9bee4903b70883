from django.apps import AppConfig
from django.core import checks


class ConsentConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "consent"

    def ready(self) -> None:
        checks.register(known_categories_kept_to_holder, checks.Tags.compatibility)


def known_categories_kept_to_holder(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """CATEGORIES_KEPT_TO_HOLDER names only categories the portal has: a misspelt one
    would silently leave that category shared."""
    from django.conf import settings

    from phr.models import Category

    unknown = sorted(set(settings.CATEGORIES_KEPT_TO_HOLDER) - set(Category.values))
    if not unknown:
        return []
    return [
        checks.Error(
            f"CATEGORIES_KEPT_TO_HOLDER names unknown categories: {', '.join(unknown)}",
            hint=f"Use any of: {', '.join(Category.values)}",
            id="consent.E001",
        )
    ]
