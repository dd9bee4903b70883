"""Notifications become the outbox of their emails: a state, a key sent with every
attempt, a count of attempts and when the latest began. Rows already emailed are sent;
the others wait for the outbox sweep (nothing used to re-send them)."""

import uuid

from django.db import migrations, models


def fill(apps, schema_editor):
    Notification = apps.get_model("accounts", "Notification")
    Notification.objects.filter(emailed_at__isnull=False).update(email_state="sent")
    for pk in Notification.objects.filter(email_key__isnull=True).values_list("pk", flat=True).iterator():
        Notification.objects.filter(pk=pk).update(email_key=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_linkage_key")]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="email_state",
            field=models.CharField(
                choices=[
                    ("pending", "Waiting to be sent"),
                    ("sending", "Being sent"),
                    ("sent", "Sent"),
                    ("not_needed", "No email address"),
                    ("failed", "Gave up after repeated failures"),
                ],
                default="pending",
                max_length=12,
            ),
        ),
        migrations.AddField(
            model_name="notification",
            name="email_key",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="email_attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="notification",
            name="email_claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="notification",
            name="email_key",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(fields=["email_state", "created_at"], name="notification_outbox"),
        ),
    ]
