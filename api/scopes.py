"""SMART on FHIR scopes: which exist, who may be granted which, what they mean in plain
words, and whether a granted set covers the scope an API view asks for.

A scope is ``<context>/<resource type>.<access>`` (SMART App Launch 1.0): context
``patient`` (a patient's app, limited to that patient's own record), ``system`` (an
organisation's system, limited by the policy to what its organisation may see), or
``user`` (a signed-in member of staff through the portal's session; never granted to a
token). ``*`` stands for every resource type, or for both read and write. Patients'
apps may only be granted ``patient/`` scopes (and the identity scopes), organisations'
systems only ``system/`` scopes: the OAuth server refuses anything else.
"""

from __future__ import annotations

from collections.abc import Iterable

from oauth2_provider.scopes import BaseScopes

from phr.vocabulary import type_name_plural

# The resource types the FHIR facade serves, and what each is in a patient's words: the
# record's items by the one vocabulary's names (phr.vocabulary), the rest described.
RECORD_TYPES = (
    "Condition",
    "AllergyIntolerance",
    "MedicationStatement",
    "MedicationRequest",
    "Observation",
    "Encounter",
    "Procedure",
    "Immunization",
    "DiagnosticReport",
    "DocumentReference",
)
RESOURCE_TYPES: dict[str, str] = {
    # The Patient resource is each organisation's copy of the patient's details.
    "Patient": "your name, date of birth, NHS number and the contact details the organisations hold",
    **{resource_type: f"your {type_name_plural(resource_type)}" for resource_type in RECORD_TYPES},
    "Consent": "your sharing choices",
    "AuditEvent": "the list of who has looked at your record",
    "Provenance": "who changed what in your record",
    "Task": "your correction requests",
    "Communication": "messages about your correction requests",
    "RelatedPerson": "the people who can act for you",
    "DetectedIssue": "what the portal's accuracy checks found in your record",
}

# The network's reference data, read in any context: not part of anyone's record, but an
# app needs it to show who holds an item and who asked. Granted like a record type.
REFERENCE_TYPES: dict[str, tuple[str, str]] = {
    # type: (a patient's words, an organisation's system's words)
    "Organization": ("the organisations in the network", "read the network's member organisations"),
    "Practitioner": (
        "the names of the staff handling your correction requests",
        "read the names of the network's clinical staff",
    ),
}

IDENTITY_SCOPES: dict[str, str] = {
    "openid": "confirm who you are",
    "fhirUser": "know which record in the portal is yours",
    "launch/patient": "know which record it is looking at",
    "offline_access": "keep its access when you are not using it, until you stop it",
}

# What an organisation's system may be granted beyond reading: pushing records in,
# updating the correction tasks its organisation owns and writing to their patients.
SYSTEM_WRITES = ("Bundle", "Task", "Communication")
# What a patient's app may be granted beyond reading: asking for corrections, replying on
# them and withdrawing them.
PATIENT_WRITES = ("Communication", "Task")


def _patient_scopes() -> dict[str, str]:
    scopes = {
        "patient/*.read": "see your whole record, your sharing choices, who has looked at your record,"
        " the people who can act for you, your correction requests and messages about them,"
        " what the portal's accuracy checks found in your record,"
        " the organisations that hold your record and the staff handling your correction requests"
    }
    for resource_type, words in RESOURCE_TYPES.items():
        scopes[f"patient/{resource_type}.read"] = f"see {words}"
    for resource_type, (words, _) in REFERENCE_TYPES.items():
        scopes[f"patient/{resource_type}.read"] = f"see {words}"
    scopes["patient/Communication.write"] = (
        "send correction requests about your record, and your replies about them, for you"
    )
    scopes["patient/Task.write"] = "withdraw your correction requests"
    return scopes


def _system_scopes() -> dict[str, str]:
    scopes = {"system/*.read": "read the records its organisation may see"}
    for resource_type in RESOURCE_TYPES:
        scopes[f"system/{resource_type}.read"] = f"read {resource_type} resources its organisation may see"
    scopes["system/DetectedIssue.read"] = (
        "read what the portal's accuracy checks found about its organisation's items"
    )
    for resource_type, (_, words) in REFERENCE_TYPES.items():
        scopes[f"system/{resource_type}.read"] = words
    scopes["system/Bundle.write"] = "send its organisation's records in as FHIR Bundles"
    scopes["system/Task.write"] = "update its organisation's correction tasks"
    scopes["system/Communication.write"] = "write to patients about its organisation's correction tasks"
    return scopes


PATIENT_SCOPES = _patient_scopes()
SYSTEM_SCOPES = _system_scopes()
PATIENT_APP_SCOPES = {**PATIENT_SCOPES, **IDENTITY_SCOPES}
ALL_SCOPES = {**PATIENT_APP_SCOPES, **SYSTEM_SCOPES}

# What the portal's own session carries, per role (the policy still decides each read):
# a patient acts on their own record; staff read as themselves.
SESSION_SCOPES: dict[str, frozenset[str]] = {
    # Sharing choices are made only in the portal itself: no token is granted Consent.write.
    "patient": frozenset(
        {"patient/*.read", "patient/Communication.write", "patient/Task.write", "patient/Consent.write"}
    ),
    "clinician": frozenset({"user/*.read", "patient/*.read"}),
    "ig_officer": frozenset({"user/*.read", "patient/*.read"}),
}


def parse(scopes: str | Iterable[str]) -> frozenset[str]:
    """A space-separated scope string (or any iterable of scopes) as a set."""
    if isinstance(scopes, str):
        scopes = scopes.split()
    return frozenset(s for s in scopes if s)


def _split(scope: str) -> tuple[str, str, str] | None:
    context, slash, rest = scope.partition("/")
    resource_type, dot, access = rest.rpartition(".")
    if not slash or not dot or not resource_type or not access:
        return None
    return context, resource_type, access


def covers(granted: str, wanted: str) -> bool:
    """Whether one granted scope covers the wanted one (``*`` for type and access)."""
    if granted == wanted:
        return True
    g, w = _split(granted), _split(wanted)
    if g is None or w is None or g[0] != w[0]:
        return False
    type_ok = g[1] == "*" or g[1] == w[1]
    access_ok = g[2] == "*" or g[2] == w[2]
    return type_ok and access_ok


def permits(granted: Iterable[str], wanted: str) -> bool:
    """Whether any of the granted scopes covers the wanted scope."""
    return any(covers(g, wanted) for g in granted)


def readable_types(granted: Iterable[str], context: str) -> frozenset[str] | None:
    """The resource types the granted scopes let a caller in ``context`` ("patient" or
    "system") read: None for every type (``<context>/*.read``), else those named.

    The policy releases entries of these types only (consent.policy.Actor.readable_types),
    so that what a token reads through any channel is what its consent screen listed.
    """
    granted = parse(granted)
    if permits(granted, f"{context}/*.read"):
        return None
    named = (_split(scope) for scope in granted)
    return frozenset(
        parts[1] for parts in named if parts is not None and parts[0] == context and parts[2] in ("read", "*")
    )


def keeps_access(scopes: Iterable[str]) -> bool:
    """Whether the app may keep its access when the patient is not using it (a refresh
    token): only when it asked for ``offline_access`` and was granted it."""
    return "offline_access" in parse(scopes)


def describe(scopes: Iterable[str]) -> list[str]:
    """What the scopes let an app do, in plain words, most general first, no repeats."""
    scopes = parse(scopes)
    lines = []
    if "patient/*.read" in scopes:
        lines.append(PATIENT_SCOPES["patient/*.read"])
    for scope in sorted(scopes, key=lambda s: list(ALL_SCOPES).index(s) if s in ALL_SCOPES else 999):
        if scope == "patient/*.read":
            continue
        if scope.startswith("patient/") and scope.endswith(".read") and "patient/*.read" in scopes:
            continue  # already said: the whole record
        words = ALL_SCOPES.get(scope, scope)
        if words not in lines:
            lines.append(words)
    return lines


class SmartScopes(BaseScopes):
    """django-oauth-toolkit's scope backend: patient apps get patient scopes, an
    organisation's system (an Application with a SystemClient) gets system scopes."""

    def get_all_scopes(self):
        return dict(ALL_SCOPES)

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        if application is not None and is_system_application(application):
            return list(SYSTEM_SCOPES)
        return list(PATIENT_APP_SCOPES)

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        if application is not None and is_system_application(application):
            return ["system/*.read"]
        return ["launch/patient", "patient/*.read"]


def is_system_application(application) -> bool:
    """Whether the OAuth application is an organisation's system (has a SystemClient)."""
    from .models import SystemClient  # late: the scopes module is loaded with the settings

    return SystemClient.objects.filter(application_id=application.pk).exists()
