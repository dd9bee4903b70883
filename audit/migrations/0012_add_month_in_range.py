"""audit_add_month refuses dates outside 1970 to 9999: a date BC made a partition named
after the real month of that number (the name carried no era), which then stopped the
real month from ever being added (found by an outside probe)."""

from django.db import migrations

from audit.partitions import ADD_MONTH_FUNCTION


def replace_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ADD_MONTH_FUNCTION, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0011_members_on_the_block")]
    operations = [migrations.RunPython(replace_function, migrations.RunPython.noop)]
