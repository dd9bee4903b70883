"""Inclusion proofs: given an event, the portal shows that it is in a sealed block, in a
form anyone can check with SHA-256 alone (RFC 6962 Merkle trees)."""

import contextlib
import hashlib
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given, settings
from hypothesis import strategies as st

import audit
from audit import merkle
from audit.ledger import Altered, inclusion, proof_holds, seal
from audit.models import AuditEvent
from tests.audit.tampering import behind_the_apps_back as raw

macs = st.lists(st.binary(min_size=32, max_size=32).map(bytes.hex), min_size=1, max_size=70)


@settings(deadline=None)  # a shared, noisy machine: no per-example time limit
@given(macs, st.data())
def test_every_leafs_proof_leads_to_the_root(leaves, data):
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    path = merkle.inclusion_proof(leaves, index)
    assert merkle.root_from_proof(leaves[index], index, len(leaves), path) == merkle.root(leaves)
    assert len(path) <= max(1, len(leaves) - 1).bit_length()


@settings(deadline=None)
@given(macs, st.data())
def test_a_proof_does_not_hold_for_another_leaf_place_or_size(leaves, data):
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    path = merkle.inclusion_proof(leaves, index)
    root = merkle.root(leaves)
    other = hashlib.sha256(bytes.fromhex(leaves[index])).hexdigest()
    assert merkle.root_from_proof(other, index, len(leaves), path) != root
    if len(leaves) > 1:
        moved = (index + 1) % len(leaves)
        if leaves[moved] != leaves[index]:
            with contextlib.suppress(ValueError):  # a path of the wrong length there: refused
                assert merkle.root_from_proof(leaves[index], moved, len(leaves), path) != root


def test_the_tree_is_rfc_6962s():
    """Known shape: a leaf hashes with 0x00, a node with 0x01, three leaves split 2 + 1."""
    a, b, c = ("0" * 63 + str(i) for i in range(3))

    def leaf(mac: str) -> bytes:
        return hashlib.sha256(b"\x00" + bytes.fromhex(mac)).digest()

    left = hashlib.sha256(b"\x01" + leaf(a) + leaf(b)).digest()
    assert merkle.root([a, b, c]) == hashlib.sha256(b"\x01" + left + leaf(c)).hexdigest()
    assert merkle.root([a]) == leaf(a).hex()
    assert merkle.root([]) == hashlib.sha256(b"").hexdigest()
    with pytest.raises(IndexError):
        merkle.inclusion_proof([a], 1)


@pytest.mark.django_db
def test_a_sealed_events_proof_holds_and_names_its_block():
    events = [audit.record("record.read", detail={"i": i}) for i in range(7)]
    block = seal()

    for event in events:
        proof = inclusion(event)
        assert proof_holds(proof)
        assert (proof.block, proof.block_hash, proof.root) == (block.number, block.hash, block.root)
        assert proof.size == 7
    tampered = inclusion(events[3])
    object.__setattr__(tampered, "event_mac", events[4].hash)
    assert not proof_holds(tampered)


@pytest.mark.django_db
def test_an_unsealed_event_has_no_proof_yet():
    event = audit.record("record.read")
    assert inclusion(event) is None
    with pytest.raises(CommandError, match="not sealed yet"):
        call_command("verify_audit", "--proof", str(event.seq))
    with pytest.raises(CommandError, match="no audit event"):
        call_command("verify_audit", "--proof", "999999")


@pytest.mark.django_db
def test_verify_audit_prints_a_proof_anyone_can_check():
    events = [audit.record("record.read", detail={"i": i}) for i in range(5)]
    seal()
    out = StringIO()
    call_command("verify_audit", "--proof", str(events[2].seq), stdout=out)
    proof = json.loads(out.getvalue())

    assert proof["leaf"] == events[2].hash
    root = merkle.root_from_proof(proof["leaf"], proof["index"], proof["treeSize"], proof["path"])
    assert root == proof["root"] == proof["blockHeader"].split()[3]
    assert hashlib.sha256(proof["blockHeader"].encode()).hexdigest() == proof["blockHash"]


@pytest.mark.django_db
def test_no_proof_is_given_for_an_event_edited_since_it_was_written():
    """Found by the outside probe: a proof vouched for the leaf of an edited event."""
    events = [audit.record("record.read", detail={"i": i}) for i in range(3)]
    seal()
    raw("UPDATE audit_auditevent SET actor_label = 'someone else' WHERE id = %s", [events[1].pk])
    with pytest.raises(Altered):
        inclusion(AuditEvent.objects.get(pk=events[1].pk))
    with pytest.raises(CommandError, match="does not match its MAC"):
        call_command("verify_audit", "--proof", str(events[1].seq))
    assert proof_holds(inclusion(events[0]))


@pytest.mark.django_db
def test_a_proof_claiming_another_tree_size_does_not_hold():
    events = [audit.record("record.read", detail={"i": i}) for i in range(3)]
    seal()
    proof = inclusion(events[0])
    object.__setattr__(proof, "size", 4)  # the same path climbs a tree of 3 or 4 leaves
    assert not proof_holds(proof)
