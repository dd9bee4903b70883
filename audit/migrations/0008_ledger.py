"""The audit ledger (audit.ledger): blocks, their members, the pending events, and the
sequence writers take their numbers from without a shared lock.

Every event written before, in the old hash chain, is sealed here into the first blocks,
in sequence order, so verify_audit checks the chain's links and the blocks alike.
"""

import django.db.models.deletion
from django.db import migrations, models, transaction
from django.utils import timezone

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_block_append_only BEFORE UPDATE OR DELETE ON audit_block
    FOR EACH ROW EXECUTE FUNCTION audit_ledger_append_only();
CREATE TRIGGER audit_blockmember_append_only BEFORE UPDATE OR DELETE ON audit_blockmember
    FOR EACH ROW EXECUTE FUNCTION audit_ledger_append_only();
CREATE SEQUENCE IF NOT EXISTS audit_event_seq;
SELECT setval('audit_event_seq', COALESCE((SELECT MAX(seq) FROM audit_auditevent), 0) + 1, false);
"""
DROP = """
DROP TRIGGER IF EXISTS audit_block_append_only ON audit_block;
DROP TRIGGER IF EXISTS audit_blockmember_append_only ON audit_blockmember;
DROP FUNCTION IF EXISTS audit_ledger_append_only();
DROP SEQUENCE IF EXISTS audit_event_seq;
"""
FIRST_BLOCKS = 20_000  # events per block when sealing the old chain


def in_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY, params=None)


def out_of_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


def seal_the_old_chain(apps, schema_editor):
    """The chained events, in sequence order, become blocks 1, 2, ...; each block is
    written to the witness as the sealer does."""
    from audit import witness
    from audit.chain import GENESIS
    from audit.ledger import block_fields, witness_line

    AuditEvent = apps.get_model("audit", "AuditEvent")
    Block = apps.get_model("audit", "Block")
    BlockMember = apps.get_model("audit", "BlockMember")
    number, prev_hash, last_seq, lines = 0, GENESIS, 0, []
    while True:
        rows = list(
            AuditEvent.objects.filter(seq__gt=last_seq)
            .order_by("seq")
            .values_list("pk", "seq", "hash")[:FIRST_BLOCKS]
        )
        if not rows:
            break
        number += 1
        block = Block.objects.create(
            **block_fields(number, prev_hash, [mac for _, _, mac in rows], timezone.now())
        )
        BlockMember.objects.bulk_create(
            [BlockMember(block=block, event_id=pk) for pk, _, _ in rows], batch_size=5000
        )
        prev_hash, last_seq = block.hash, rows[-1][1]
        lines.append(witness_line(number, block.hash, witness.database_id()))
    transaction.on_commit(lambda: [witness.append(line) for line in lines])


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0007_chain_head_seal"),
    ]

    operations = [
        migrations.CreateModel(
            name="Block",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.PositiveBigIntegerField(unique=True)),
                ("sealed_at", models.DateTimeField()),
                ("size", models.PositiveIntegerField()),
                ("root", models.CharField(max_length=64)),
                ("prev_hash", models.CharField(max_length=64)),
                ("hash", models.CharField(max_length=64, unique=True)),
                ("seal", models.CharField(max_length=64)),
            ],
            options={
                "ordering": ["number"],
            },
        ),
        migrations.CreateModel(
            name="PendingSeal",
            fields=[
                (
                    "event",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="audit.auditevent",
                    ),
                ),
            ],
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.CreateModel(
            name="BlockMember",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "block",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="members",
                        to="audit.block",
                    ),
                ),
                (
                    "event",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sealed_in",
                        to="audit.auditevent",
                    ),
                ),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.RunPython(in_postgresql, out_of_postgresql),
        migrations.RunPython(seal_the_old_chain, migrations.RunPython.noop),
    ]
