"""Each notification keeps the path of the page it is about, for the inbox and the
email to link to. Older notifications have none and link nowhere."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_notification_outbox"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="link",
            field=models.CharField(blank=True, default="", max_length=300),
        ),
    ]
