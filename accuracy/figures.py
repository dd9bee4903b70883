"""Figures fed back to each organisation about the corrections it received: what
changes practice is each department seeing its own numbers beside everyone else's."""

from collections import Counter
from dataclasses import dataclass, field
from statistics import median

from django.utils import timezone

from phr.models import Organisation
from phr.replica import lag_tolerant

from .models import BusinessStatus, CorrectionRequest, Status


@dataclass
class OwnerFigures:
    organisation: Organisation
    received: int = 0
    accepted: int = 0
    partly_accepted: int = 0
    denied: int = 0
    withdrawn: int = 0
    open_now: int = 0
    overdue_now: int = 0
    median_days_to_decision: float | None = None
    most_corrected: list[tuple[str, int]] = field(default_factory=list)

    @property
    def decided(self) -> int:
        return self.accepted + self.partly_accepted + self.denied


DECIDED = {
    BusinessStatus.AMENDED: "accepted",
    BusinessStatus.PARTIAL: "partly_accepted",
    BusinessStatus.DENIED: "denied",
    BusinessStatus.DISAGREEMENT: "denied",  # a disagreement follows a refusal
}


@lag_tolerant
def figures_for(organisation: Organisation, requests=None) -> OwnerFigures:
    """One organisation's figures, from its requests."""
    today = timezone.localdate()
    rows = list(
        (requests if requests is not None else CorrectionRequest.objects.filter(owner=organisation))
        .select_related("entry")
        .only("status", "business_status", "received_on", "due_on", "decided_at", "entry__resource_type")
    )
    figures = OwnerFigures(organisation, received=len(rows))
    days, kinds = [], Counter()
    for request in rows:
        if request.business_status in DECIDED:
            setattr(
                figures,
                DECIDED[request.business_status],
                getattr(figures, DECIDED[request.business_status]) + 1,
            )
            if request.decided_at:
                days.append((timezone.localdate(request.decided_at) - request.received_on).days)
            if request.business_status in (BusinessStatus.AMENDED, BusinessStatus.PARTIAL):
                kinds[request.entry.resource_type] += 1
        elif request.status == Status.CANCELLED:
            figures.withdrawn += 1
        else:
            figures.open_now += 1
            figures.overdue_now += request.due_on < today
    figures.median_days_to_decision = median(days) if days else None
    figures.most_corrected = kinds.most_common(3)
    return figures


@lag_tolerant
def network_figures() -> list[OwnerFigures]:
    """Every member organisation's figures, for the network-wide comparison."""
    by_owner: dict[int, list] = {}
    for request in (
        CorrectionRequest.objects.all()
        .select_related("entry")
        .only(
            "owner_id",
            "status",
            "business_status",
            "received_on",
            "due_on",
            "decided_at",
            "entry__resource_type",
        )
    ):
        by_owner.setdefault(request.owner_id, []).append(request)
    return [
        figures_for(organisation, _Rows(by_owner.get(organisation.pk, [])))
        for organisation in Organisation.objects.order_by("name")
    ]


class _Rows(list):
    """A list that answers the two queryset calls figures_for makes."""

    def select_related(self, *names):
        return self

    def only(self, *names):
        return self
