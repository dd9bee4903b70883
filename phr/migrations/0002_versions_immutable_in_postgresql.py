"""On PostgreSQL the database itself refuses to change or remove an entry version,
so not even a bug or a raw SQL session in the app can rewrite history."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION phr_version_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'phr_entryversion rows are immutable';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER phr_entryversion_immutable
    BEFORE UPDATE OR DELETE ON phr_entryversion
    FOR EACH ROW EXECUTE FUNCTION phr_version_immutable();
"""
DROP = """
DROP TRIGGER IF EXISTS phr_entryversion_immutable ON phr_entryversion;
DROP FUNCTION IF EXISTS phr_version_immutable();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("phr", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
