"""The portal's URLs plus the bench's bare view (see bench/api.py)."""

from django.urls import path

from bench.api import bare_view
from config.urls import urlpatterns as portal

urlpatterns = [
    path("bare/Patient/<uuid:patient_uuid>/$everything", bare_view),
    *portal,
]
