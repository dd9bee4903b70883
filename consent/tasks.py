"""Run by beat: telling patients who looked at their record (consent.access_alerts), and
ending a parent's proxy access at a child's review ages (consent.proxies)."""

from celery import shared_task
from django.conf import settings

from . import access_alerts, proxies


@shared_task(acks_late=True)
def access_alert_scan() -> dict:
    """Tell "each time" patients of the looks since the last scan; safe to run again."""
    return access_alerts.scan()


@shared_task(acks_late=True)
def daily_access_digest() -> dict | None:
    """Send the daily lists of who looked, once a day from ACCESS_DIGEST_HOUR."""
    return access_alerts.daily_digest(hour=settings.ACCESS_DIGEST_HOUR)


@shared_task(acks_late=True)
def proxy_age_review() -> int:
    """End proxy access for children who reached a review age; safe to run again."""
    return proxies.review_by_age()
