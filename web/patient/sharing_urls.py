"""Who can see my record, my sharing choices, who has looked.

Only the signed-in patient's own record: no patient id ever appears in these addresses.
"""

from django.urls import path

from web.patient import check, proxies
from web.patient import sharing as views

app_name = "sharing"
urlpatterns = [
    path("", views.who_can_see, name="who_can_see"),
    path("preview/<int:organisation_id>/", views.preview, name="preview"),
    path("choices/", views.choices, name="choices"),
    path("choices/confirm/", views.confirm, name="confirm"),
    path("history/", views.history, name="history"),
    path("consent.json", views.consent_fhir, name="consent_fhir"),
    path("access-log/", views.access_log_page, name="access_log"),
    # Check before you share: pause, check item by item, then choose where to share.
    path("check/", check.start, name="check_start"),
    path("check/items/", check.items, name="check_items"),
    path("check/items/<uuid:entry_id>/", check.mark, name="check_mark"),
    path("check/finish/", check.finish, name="check_finish"),
    # People who can act for the patient (proxy access).
    path("proxies/", proxies.proxies, name="proxies"),
    path("proxies/add/", proxies.proxy_add, name="proxy_add"),
    path("proxies/<int:grant_id>/end/", proxies.proxy_end, name="proxy_end"),
]
