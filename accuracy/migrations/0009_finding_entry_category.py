"""FindingEntry.category: the category of the version a finding quotes. Rows about an
entry's current version take the entry's category (exact); rows about an earlier version
stay blank, which no limited view admits, until the checks run again."""

from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery


def current_categories(apps, schema_editor):
    FindingEntry = apps.get_model("accuracy", "FindingEntry")
    RecordEntry = apps.get_model("phr", "RecordEntry")
    current = RecordEntry.objects.filter(pk=OuterRef("entry_id"), version=OuterRef("version"))
    FindingEntry.objects.filter(entry__version=F("version")).update(
        category=Subquery(current.values("category")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accuracy", "0008_findings"),
        ("phr", "0007_entry_third_party"),
    ]

    operations = [
        migrations.AddField(
            model_name="findingentry",
            name="category",
            field=models.CharField(blank=True, default="", max_length=20),
        ),
        migrations.RunPython(current_categories, migrations.RunPython.noop),
    ]
