"""Disclosure sets: each set of entries disclosed together is stored once and named by
its digest; events written before keep their inline list (column "entries").

On PostgreSQL the database refuses to change or remove a set, as it does for events."""

import audit.models
import django.db.models.deletion
from django.db import migrations, models


CREATE = """
CREATE OR REPLACE FUNCTION audit_disclosureset_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_disclosureset rows are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_disclosureset_append_only
    BEFORE UPDATE OR DELETE ON audit_disclosureset
    FOR EACH ROW EXECUTE FUNCTION audit_disclosureset_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS audit_disclosureset_append_only ON audit_disclosureset;
DROP FUNCTION IF EXISTS audit_disclosureset_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0004_entries_stored_uncompressed'),
    ]

    operations = [
        migrations.CreateModel(
            name='DisclosureSet',
            fields=[
                ('digest', models.CharField(max_length=64, primary_key=True, serialize=False)),
                ('refs', models.TextField()),
                ('count', models.PositiveIntegerField()),
            ],
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='entries',
            field=audit.models.EntryRefsField(blank=True, db_column='entries', default=list),
        ),
        migrations.RenameField(
            model_name='auditevent',
            old_name='entries',
            new_name='inline_entries',
        ),
        migrations.AddField(
            model_name='auditevent',
            name='disclosure',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='events', to='audit.disclosureset'),
        ),
        migrations.RunPython(forwards, backwards),
    ]
