"""The clinician's corrections workspace: the queue, one request and its steps, figures."""

from django.urls import path

from web.clinician import workspace as views

app_name = "workspace"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("figures/", views.figures, name="figures"),
    path("<uuid:request_id>/", views.detail, name="request"),
    path("<uuid:request_id>/<slug:step>/", views.act, name="act"),
]
