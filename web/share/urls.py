"""Share links: a patient shows their record to a clinician outside the network."""

from django.urls import path

from web.share import views as share_views

app_name = "share"
urlpatterns = [
    path("", share_views.links, name="links"),
    path("new/", share_views.new, name="new"),
    path("<int:link_id>/revoke/", share_views.revoke, name="revoke"),
    # The token is the only thing in the address: no name, NHS number or record id.
    path("v/<str:token>/", share_views.view, name="view"),
    # The link's SMART Health Link manifest: apps POST the passcode here.
    path("m/<str:token>/", share_views.manifest, name="manifest"),
]
