"""Linking an account to a record, the inbox, and choosing whose record a proxy acts for."""

from django.urls import path

from web.patient import inbox as inbox_views
from web.patient import linking as linking_views
from web.patient import proxies as proxy_views

app_name = "portal"
urlpatterns: list = [
    path("link/", linking_views.link_record, name="link_record"),
    path("linkage-keys/", linking_views.issue_key, name="issue_linkage_key"),
    path("inbox/", inbox_views.inbox, name="inbox"),
    path("inbox/<int:pk>/", inbox_views.inbox_item, name="inbox_item"),
    path("acting-for/", proxy_views.acting_for, name="acting_for"),
    path("acting-for/<int:grant_id>/end/", proxy_views.acting_for_end, name="acting_for_end"),
]
