"""A block lists its members' sequence numbers on its own row, and the events waiting to
be sealed carry what the sealer needs (number, MAC, time): per event, one small row is
written and later removed, where before a pending row and a member row with three
indexes were (issue 14's throughput goal). The members of every block, and the pending
events, move across; verify_audit passes across the change.
"""

from django.db import migrations, models

MEMBERS_PG = """
ALTER TABLE audit_block DISABLE TRIGGER audit_block_append_only;
UPDATE audit_block b SET members = x.members, first_seq = x.first_seq, last_seq = x.last_seq
FROM (
    SELECT m.block_id, string_agg(e.seq::text, ' ' ORDER BY e.seq) AS members,
           MIN(e.seq) AS first_seq, MAX(e.seq) AS last_seq
    FROM audit_blockmember m JOIN audit_auditevent e ON e.id = m.event_id
    GROUP BY m.block_id
) x
WHERE x.block_id = b.id;
ALTER TABLE audit_block ENABLE TRIGGER audit_block_append_only;
"""
PENDING = (
    "INSERT INTO audit_unsealed (seq, mac, occurred_at)"
    " SELECT e.seq, e.hash, e.occurred_at FROM audit_pendingseal p"
    " JOIN audit_auditevent e ON e.id = p.event_id"
)
PENDING_BACK = (
    "INSERT INTO audit_pendingseal (event_id)"
    " SELECT e.id FROM audit_unsealed u JOIN audit_auditevent e ON e.seq = u.seq"
)
MEMBERS_BACK = (
    "INSERT INTO audit_blockmember (block_id, event_id) SELECT %s, id FROM audit_auditevent WHERE seq IN ({})"
)


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(MEMBERS_PG)
        else:  # SQLite: no append-only trigger on blocks, and a small embedded trail
            cursor.execute("SELECT id FROM audit_block ORDER BY number")
            for (block_id,) in cursor.fetchall():
                cursor.execute(
                    "SELECT e.seq FROM audit_blockmember m JOIN audit_auditevent e ON e.id = m.event_id"
                    " WHERE m.block_id = %s ORDER BY e.seq",
                    [block_id],
                )
                seqs = [seq for (seq,) in cursor.fetchall()]
                if seqs:
                    cursor.execute(
                        "UPDATE audit_block SET members = %s, first_seq = %s, last_seq = %s WHERE id = %s",
                        [" ".join(map(str, seqs)), seqs[0], seqs[-1], block_id],
                    )
        cursor.execute(PENDING)


def backwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, members FROM audit_block ORDER BY number")
        for block_id, members in cursor.fetchall():
            seqs = [int(seq) for seq in members.split()]
            for start in range(0, len(seqs), 5000):
                part = seqs[start : start + 5000]
                cursor.execute(MEMBERS_BACK.format(", ".join(["%s"] * len(part))), [block_id, *part])
        cursor.execute(PENDING_BACK)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0010_partitioned_by_month"),
        # Its data migration reads the members as they were.
        ("accounts", "0008_access_alerts_by_block"),
    ]

    operations = [
        migrations.CreateModel(
            name="Unsealed",
            fields=[
                ("seq", models.BigIntegerField(primary_key=True, serialize=False)),
                ("mac", models.CharField(max_length=64)),
                ("occurred_at", models.DateTimeField()),
            ],
        ),
        migrations.AddField(model_name="block", name="members", field=models.TextField(default="")),
        migrations.AddField(model_name="block", name="first_seq", field=models.BigIntegerField(default=0)),
        migrations.AddField(model_name="block", name="last_seq", field=models.BigIntegerField(default=0)),
        migrations.AlterField(model_name="block", name="sealed_at", field=models.DateTimeField(db_index=True)),
        migrations.RunPython(forwards, backwards),
        migrations.DeleteModel(name="BlockMember"),
        migrations.DeleteModel(name="PendingSeal"),
    ]
