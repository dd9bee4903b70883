"""Requests get a short reference a patient can quote, and where to phone or write."""

import secrets

from django.db import migrations, models

import accuracy.models

ALPHABET = "2346789ABCDEFGHJKMNPQRTUVWXYZ"


def give_references(apps, schema_editor):
    """Each existing request its own reference, before the column becomes unique."""
    requests = apps.get_model("accuracy", "CorrectionRequest")
    taken = set()
    for request in requests.objects.filter(reference__isnull=True).only("pk"):
        while True:
            chars = "".join(secrets.choice(ALPHABET) for _ in range(6))
            reference = f"PRC-{chars[:4]}-{chars[4:]}"
            if reference not in taken:
                break
        taken.add(reference)
        requests.objects.filter(pk=request.pk).update(reference=reference)


class Migration(migrations.Migration):
    dependencies = [("accuracy", "0005_sweep_run")]

    operations = [
        migrations.AddField(
            model_name="correctionrequest",
            name="contact_address",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="correctionrequest",
            name="contact_phone",
            field=models.CharField(blank=True, max_length=30),
        ),
        migrations.AddField(
            model_name="correctionrequest",
            name="contact_postcode",
            field=models.CharField(blank=True, max_length=10),
        ),
        migrations.AddField(
            model_name="correctionrequest",
            name="reference",
            field=models.CharField(editable=False, max_length=12, null=True),
        ),
        migrations.RunPython(give_references, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="correctionrequest",
            name="reference",
            field=models.CharField(
                default=accuracy.models.new_reference, editable=False, max_length=12, unique=True
            ),
        ),
    ]
