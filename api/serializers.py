"""The JSON API's shapes: explicit fields, so the OpenAPI schema says exactly what is sent.

Serializers here parse input and shape output; every rule stays in the workflow it
belongs to (consent.services, accuracy.services, consent.policy).
"""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import Notification
from accounts.outbox import portal_address
from accuracy.models import BusinessStatus, ContactPreference, CorrectionRequest, DenialReason, Status
from audit.models import Outcome
from consent import ig_queries
from consent.models import ConsentChoice, Decision, Scope
from phr.dates import range_error
from phr.models import Category, Organisation

# --- Errors ---------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every error: what went wrong in words, and the input it is about when there is one."""

    detail = serializers.CharField()
    field = serializers.CharField(required=False, help_text="The input the error is about")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Every input with a problem, with what to fix",
    )


class DuplicateErrorSerializer(ErrorSerializer):
    existing = serializers.UUIDField(help_text="The open request on the same item")


def page_of(item: type[serializers.Serializer], name: str, **extra) -> type[serializers.Serializer]:
    """A page of results (limit/offset) as its own schema component."""
    fields = {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item(many=True),
        **extra,
    }
    return type(name, (serializers.Serializer,), fields)


# --- Shared pieces --------------------------------------------------------------------

# Dates outside these years are typing mistakes, and the day after 31 December 9999
# does not exist: the searches, which count "to" days inclusively, would fail on it.
FIRST_YEAR, LAST_YEAR = 1900, 2999


class DayField(serializers.DateField):
    """A day (YYYY-MM-DD) between FIRST_YEAR and LAST_YEAR."""

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise serializers.ValidationError(f"Enter a date between {FIRST_YEAR} and {LAST_YEAR}")
        return day


class OrganisationSerializer(serializers.Serializer):
    ods_code = serializers.CharField()
    name = serializers.CharField()


# --- Notifications --------------------------------------------------------------------


class NotificationSerializer(serializers.ModelSerializer):
    link = serializers.SerializerMethodField(
        help_text="The full address of the portal page the message is about, or null"
    )
    link_words = serializers.CharField(read_only=True, help_text="What a link to that page says")

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "link", "link_words", "created_at", "read_at"]
        read_only_fields = fields

    def get_link(self, note: Notification) -> str | None:
        return portal_address(note.link) if note.link else None


NotificationPageSerializer = page_of(NotificationSerializer, "NotificationPage")


# --- Consent --------------------------------------------------------------------------


class ConsentChoiceSerializer(serializers.ModelSerializer):
    organisation = OrganisationSerializer(allow_null=True)
    # Declared, not derived: a read-only field derived from the model loses its blank value.
    category = serializers.ChoiceField(choices=Category.choices, allow_blank=True)
    sentence = serializers.CharField(help_text="The choice in plain words")

    class Meta:
        model = ConsentChoice
        fields = [
            "id",
            "scope",
            "decision",
            "organisation",
            "category",
            "until",
            "reason",
            "recorded_at",
            "sentence",
        ]
        read_only_fields = fields


ConsentChoicePageSerializer = page_of(ConsentChoiceSerializer, "ConsentChoicePage")


class OrganisationSharingSerializer(serializers.Serializer):
    organisation = OrganisationSerializer()
    sentence = serializers.CharField(help_text="What this organisation can see, in plain words")
    shared = serializers.ListField(
        child=serializers.ChoiceField(choices=Category.choices),
        help_text="The kinds of information it may see beyond what it holds itself",
    )
    not_shared = serializers.ListField(child=serializers.ChoiceField(choices=Category.choices))
    holds_items = serializers.BooleanField(help_text="It holds items of the record, which it always sees")
    because = serializers.ListField(
        child=serializers.CharField(), help_text="The patient's choices that decided it, in words"
    )


class ConsentSerializer(serializers.Serializer):
    default = serializers.CharField(help_text="The rule when the patient has made no choice")
    choices = ConsentChoiceSerializer(many=True, help_text="The choices in force now")
    organisations = OrganisationSharingSerializer(many=True)


class ConsentChangeSerializer(serializers.Serializer):
    """One new sharing choice, as consent.services.change_consent takes it."""

    scope = serializers.ChoiceField(choices=Scope.choices)
    decision = serializers.ChoiceField(choices=Decision.choices)
    organisation = serializers.SlugRelatedField(
        slug_field="ods_code",
        queryset=Organisation.objects.all(),
        required=False,
        allow_null=True,
        help_text="The organisation's ODS code, for a choice about one organisation",
        error_messages={
            "does_not_exist": "No member organisation has the ODS code {value}",
            "invalid": "Give the organisation's ODS code",
        },
    )
    category = serializers.ChoiceField(choices=Category.choices, required=False, allow_blank=True, default="")
    until = DayField(required=False, allow_null=True, help_text="The choice lapses as this day begins")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


# --- Corrections ----------------------------------------------------------------------


class CorrectionSummarySerializer(serializers.ModelSerializer):
    owner = OrganisationSerializer(help_text="The organisation that holds the item and decides")
    state = serializers.CharField(help_text="The state in plain words")
    status = serializers.ChoiceField(choices=Status.choices)
    business_status = serializers.ChoiceField(choices=BusinessStatus.choices)
    overdue = serializers.BooleanField()
    days_left = serializers.IntegerField(help_text="Days to the deadline; negative when overdue")

    class Meta:
        model = CorrectionRequest
        fields = [
            "id",
            "status",
            "business_status",
            "state",
            "owner",
            "item_display",
            "element",
            "element_label",
            "proposed",
            "received_on",
            "due_on",
            "overdue",
            "days_left",
            "created_at",
            "revision",
        ]
        read_only_fields = fields


CorrectionPageSerializer = page_of(CorrectionSummarySerializer, "CorrectionPage")


class TimelineStepSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    words = serializers.CharField()
    note = serializers.CharField(allow_blank=True)
    by = serializers.CharField(allow_blank=True)


class CorrectionDetailSerializer(CorrectionSummarySerializer):
    decision_code = serializers.ChoiceField(choices=DenialReason.choices, allow_blank=True)
    timeline = TimelineStepSerializer(many=True)

    class Meta(CorrectionSummarySerializer.Meta):
        fields = [
            *CorrectionSummarySerializer.Meta.fields,
            "current_text",
            "reason",
            "contact_preference",
            "contact_phone",
            "contact_address",
            "contact_postcode",
            "first_due_on",
            "extension_reason",
            "decision_code",
            "decision_text",
            "decided_at",
            "timeline",
        ]
        read_only_fields = fields


class CorrectionSubmitSerializer(serializers.Serializer):
    """A patient's correction request, as accuracy.services.submit_correction takes it."""

    entry = serializers.UUIDField(help_text="The id of the item of the patient's own record")
    element = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200, help_text="Which part is wrong"
    )
    proposed = serializers.CharField(max_length=2000, help_text="What it should say")
    reason = serializers.CharField(max_length=4000, help_text="Why it is wrong")
    contact_preference = serializers.ChoiceField(choices=ContactPreference.choices)
    contact_phone = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=30, help_text="Needed for a phone call"
    )
    contact_address = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=500, help_text="Needed for a letter"
    )
    contact_postcode = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=10, help_text="Needed for a letter"
    )


# --- Audit ----------------------------------------------------------------------------


class AccessLogQuerySerializer(serializers.Serializer):
    """The filters of a patient's own access log."""

    organisation = serializers.SlugRelatedField(
        slug_field="ods_code",
        queryset=Organisation.objects.all(),
        required=False,
        help_text="The ODS code of the organisation that acted",
        error_messages={"does_not_exist": "No member organisation has the ODS code {value}"},
    )
    date_from = DayField(required=False, help_text="The first day to include")
    date_to = DayField(required=False, help_text="The last day to include")
    emergency = serializers.BooleanField(
        required=False, default=False, help_text="Patients: only emergency access"
    )

    def validate(self, data):
        error = range_error(data.get("date_from"), data.get("date_to"))
        if error:
            raise serializers.ValidationError({"date_to": error})
        return data


class AuditQuerySerializer(AccessLogQuerySerializer):
    """The filters of an audit search (an IG officer); a patient's own log uses the others."""

    patient = serializers.UUIDField(required=False, help_text="IG officers: the patient's id")
    actor = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="IG officers: the user's id"
    )
    action = serializers.ChoiceField(choices=ig_queries.ACTION_CHOICES, required=False)
    outcome = serializers.ChoiceField(choices=Outcome.choices, required=False)


class AuditEventSerializer(serializers.Serializer):
    """One event of the audit trail, as information governance sees it: metadata only."""

    seq = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    action = serializers.CharField()
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    actor_id = serializers.IntegerField(allow_null=True)
    actor_label = serializers.CharField(allow_blank=True)
    organisation = OrganisationSerializer(allow_null=True)
    patient_id = serializers.UUIDField(allow_null=True)
    entry_count = serializers.IntegerField()
    purpose = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(allow_blank=True)


class LookItemSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="pk")
    resource_type = serializers.CharField()
    display = serializers.CharField(allow_blank=True)


class LookSerializer(serializers.Serializer):
    """One look at a patient's record by someone else, as the patient sees it."""

    when = serializers.DateTimeField(source="event.occurred_at")
    who = serializers.CharField(source="person")
    organisation = OrganisationSerializer(source="event.organisation", allow_null=True)
    action = serializers.CharField(source="event.action")
    purpose = serializers.CharField(source="event.purpose", allow_blank=True)
    reason = serializers.CharField(source="event.reason", allow_blank=True)
    emergency = serializers.BooleanField()
    what = serializers.ListField(
        child=serializers.CharField(), source="kinds", help_text="What was seen, as '2 test results'"
    )
    items = LookItemSerializer(many=True, help_text="The items seen that the patient may see")


AuditTrailPageSerializer = page_of(
    AuditEventSerializer,
    "AuditTrailPage",
    log=serializers.ChoiceField(choices=[("audit-trail", "The audit trail")]),
)


class ProxyActSerializer(serializers.Serializer):
    """One thing someone acting for the patient did, or tried, on the patient's record."""

    when = serializers.DateTimeField(source="event.occurred_at")
    what = serializers.CharField(source="words", help_text="In words, as 'Read the record'")
    refused = serializers.BooleanField()
    app = serializers.CharField(allow_blank=True, help_text="The app connected or stopped, if any")
    items = LookItemSerializer(
        many=True, source="look.items", default=list, help_text="For a read, the items seen"
    )


class PersonActingSerializer(serializers.Serializer):
    """Someone acting for the patient, and what they did, newest first."""

    email = serializers.CharField()
    relationship = serializers.CharField(allow_blank=True)
    acts = ProxyActSerializer(many=True)


AccessLogPageSerializer = page_of(
    LookSerializer,
    "AccessLogPage",
    log=serializers.ChoiceField(choices=[("access-log", "A patient's own access log")]),
    people_acting=PersonActingSerializer(
        many=True, help_text="What people acting for the patient did (the newest acts), as the page shows"
    ),
    people_acting_more=serializers.BooleanField(help_text="More acts than these: narrow the dates"),
)
