"""The JSON API at /api/v1/ (its OpenAPI schema and docs are in api.schema_urls)."""

from django.urls import path

from . import json_views as views

app_name = "api"
urlpatterns = [
    path("notifications/", views.NotificationList.as_view(), name="notifications"),
    path("notifications/<int:pk>/read/", views.NotificationRead.as_view(), name="notification_read"),
    path("consent/", views.ConsentView.as_view(), name="consent"),
    path("consent/history/", views.ConsentHistory.as_view(), name="consent_history"),
    path("consent/choices/", views.ConsentChange.as_view(), name="consent_choices"),
    path("corrections/", views.CorrectionList.as_view(), name="corrections"),
    path("corrections/<uuid:request_id>/", views.CorrectionDetail.as_view(), name="correction"),
    path("audit/events/", views.AuditEvents.as_view(), name="audit_events"),
    path("access-log/", views.AccessLog.as_view(), name="access_log"),
]
