"""What the record tells the layers above it, without knowing them (the layers point one
way: phr imports none of them)."""

from django.dispatch import Signal

# Entries of these patients were created, changed or moved (ingest, amendment):
# send(sender, patient_ids=set of patient ids). Receivers run in the sender's transaction.
entries_changed = Signal()
