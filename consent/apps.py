from django.apps import AppConfig
from django.core import checks


class ConsentConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "consent"

    def ready(self) -> None:
        checks.register(known_categories_kept_to_holder, checks.Tags.compatibility)


def known_categories_kept_to_holder(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """CATEGORIES_KEPT_TO_HOLDER and PROXY_HIDDEN_CATEGORIES name only categories the
    portal has: a misspelt one would silently leave that category shown."""
    from django.conf import settings

    from phr.models import Category

    found = []
    for name, check_id in (
        ("CATEGORIES_KEPT_TO_HOLDER", "consent.E001"),
        ("PROXY_HIDDEN_CATEGORIES", "consent.E002"),
    ):
        unknown = sorted(set(getattr(settings, name)) - set(Category.values))
        if unknown:
            found.append(
                checks.Error(
                    f"{name} names unknown categories: {', '.join(unknown)}",
                    hint=f"Use any of: {', '.join(Category.values)}",
                    id=check_id,
                )
            )
    return found
