"""Linking an account to a record, and the inbox."""

from django.urls import path

from web.patient import inbox as inbox_views
from web.patient import linking as linking_views

app_name = "portal"
urlpatterns: list = [
    path("link/", linking_views.link_record, name="link_record"),
    path("linkage-keys/", linking_views.issue_key, name="issue_linkage_key"),
    path("inbox/", inbox_views.inbox, name="inbox"),
    path("inbox/<int:pk>/", inbox_views.inbox_item, name="inbox_item"),
]
