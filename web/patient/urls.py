"""The patient's own record pages, mounted at /record/, and their correction requests."""

from django.urls import path

from web.patient import corrections as corrections
from web.patient import details, findings
from web.patient import record as views

app_name = "record"
urlpatterns = [
    path("", views.summary, name="summary"),
    path("download.json", views.download, name="download"),
    path("print/", views.print_record, name="print"),
    path("details/", details.personal_details, name="details"),
    path("items/<uuid:entry_id>/", views.item, name="item"),
    path("items/<uuid:entry_id>/correct/", corrections.correct, name="correct"),
    path("corrections/", corrections.corrections, name="corrections"),
    path("corrections/<uuid:request_id>/", corrections.correction, name="correction"),
    path("corrections/<uuid:request_id>/reply/", corrections.reply, name="correction_reply"),
    path("corrections/<uuid:request_id>/withdraw/", corrections.withdraw, name="correction_withdraw"),
    path("corrections/<uuid:request_id>/disagree/", corrections.disagree, name="correction_disagree"),
    path("checks/", findings.checks, name="checks"),
    path("checks/<uuid:finding_id>/right/", findings.finding_right, name="finding_right"),
    path("checks/<uuid:finding_id>/ask/", findings.finding_ask, name="finding_ask"),
    # Last: a kind's slug would otherwise swallow the pages above.
    path("<slug:kind>/", views.kind, name="kind"),
]
