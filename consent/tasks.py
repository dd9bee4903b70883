"""Telling patients who looked at their record (consent.access_alerts), run by beat."""

from celery import shared_task
from django.conf import settings

from . import access_alerts


@shared_task(acks_late=True)
def access_alert_scan() -> dict:
    """Tell "each time" patients of the looks since the last scan; safe to run again."""
    return access_alerts.scan()


@shared_task(acks_late=True)
def daily_access_digest() -> dict | None:
    """Send the daily lists of who looked, once a day from ACCESS_DIGEST_HOUR."""
    return access_alerts.daily_digest(hour=settings.ACCESS_DIGEST_HOUR)
