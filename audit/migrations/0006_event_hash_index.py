"""An index on the event hash, for FHIR AuditEvent/<id> (see AuditEvent.Meta.indexes).

Every read writes an audit event, so an index build that locks the table against writes
would stop the portal for as long as it takes on a large trail: on PostgreSQL it is
built CONCURRENTLY, outside a transaction (hence atomic = False)."""

from django.conf import settings
from django.db import migrations, models


class AddIndexWithoutBlockingWrites(migrations.AddIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.add_index(model, self.index, concurrently=True)
            else:
                schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.remove_index(model, self.index, concurrently=True)
            else:
                schema_editor.remove_index(model, self.index)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('audit', '0005_disclosure_sets'),
        ('phr', '0003_amendment_provenance'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexWithoutBlockingWrites(
            model_name='auditevent',
            index=models.Index(fields=['hash'], name='audit_hash'),
        ),
    ]
