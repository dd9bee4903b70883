"""The patient's own record pages, mounted at /record/."""

from django.urls import path

from . import record_views as views

app_name = "record"
urlpatterns = [
    path("", views.summary, name="summary"),
    path("download.json", views.download, name="download"),
    path("print/", views.print_record, name="print"),
    path("items/<uuid:entry_id>/", views.item, name="item"),
    path("<slug:kind>/", views.kind, name="kind"),
]
