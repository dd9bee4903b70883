"""Audit: the one place every disclosure and change is written down.

    audit.record("record.read", actor=user, organisation=org, patient=p, entries=[...])

The write joins the caller's transaction when there is one; if it fails, the caller's
work fails with it, so nothing is disclosed or changed without its event.
"""


def record(action: str, *, entries=(), **fields):
    """Write one event to the ledger and return it; failures propagate. It is sealed into
    a block within seconds (audit.ledger.seal)."""
    from .ledger import append  # late: audit is a leaf that every app imports

    refs = [e if isinstance(e, str) else f"{e.pk.hex}:{e.version}" for e in entries]
    return append(action=action, entries=refs, **fields)


def entry_ref(entry) -> str:
    """How an event names an entry version: '<entry id hex>:<version>'."""
    if isinstance(entry, str):
        return entry
    return f"{entry.pk.hex}:{entry.version}"
