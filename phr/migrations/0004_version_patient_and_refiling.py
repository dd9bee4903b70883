"""Each entry version records the patient it was filed under (and the reference it was
filed by), and re-filings are kept: a version belongs to the patient it was filed under.

Versions written before this migration are taken to belong to their entry's current
patient: that is what the portal showed until now, and nothing better is known of them.
Rows of phr_entryversion are immutable on PostgreSQL (0002); the trigger is lifted for
this one backfill, in this migration's transaction, and put back.
"""

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = """
UPDATE phr_entryversion SET
    patient_id = (SELECT e.patient_id FROM phr_recordentry e WHERE e.id = phr_entryversion.entry_id),
    subject_ref = (SELECT e.subject_ref FROM phr_recordentry e WHERE e.id = phr_entryversion.entry_id)
"""
REFILING_IMMUTABLE = """
CREATE OR REPLACE FUNCTION phr_refiling_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'phr_refiling rows are immutable';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER phr_refiling_immutable
    BEFORE UPDATE OR DELETE ON phr_refiling
    FOR EACH ROW EXECUTE FUNCTION phr_refiling_immutable();
"""
DROP_REFILING_IMMUTABLE = """
DROP TRIGGER IF EXISTS phr_refiling_immutable ON phr_refiling;
DROP FUNCTION IF EXISTS phr_refiling_immutable();
"""


def backfill(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    if postgresql:
        # Check the new foreign key at once, so that no trigger event is pending when
        # the immutability trigger is switched back on.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute("ALTER TABLE phr_entryversion DISABLE TRIGGER phr_entryversion_immutable")
    schema_editor.execute(BACKFILL)
    if postgresql:
        schema_editor.execute("ALTER TABLE phr_entryversion ENABLE TRIGGER phr_entryversion_immutable")
        schema_editor.execute(REFILING_IMMUTABLE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_REFILING_IMMUTABLE)


class Migration(migrations.Migration):

    dependencies = [
        ('phr', '0003_amendment_provenance'),
    ]

    operations = [
        migrations.AddField(
            model_name='entryversion',
            name='patient',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='phr.patient'),
        ),
        migrations.AddField(
            model_name='entryversion',
            name='subject_ref',
            field=models.CharField(blank=True, db_default='', max_length=140),
        ),
        migrations.CreateModel(
            name='Refiling',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('version', models.PositiveIntegerField()),
                ('moved_at', models.DateTimeField()),
                ('batch', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='phr.ingestbatch')),
                ('entry', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='refilings', to='phr.recordentry')),
                ('from_patient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='refiled_away', to='phr.patient')),
                ('to_patient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='refiled_in', to='phr.patient')),
            ],
            options={
                'ordering': ['moved_at', 'pk'],
            },
        ),
        migrations.RunPython(backfill, backwards),
    ]
