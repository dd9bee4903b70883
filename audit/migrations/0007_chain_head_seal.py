"""The chain head's seal: an HMAC over its sequence number and hash (audit.chain.head_seal).

The head in place when this runs is sealed as it stands: the seal protects from here on.
"""

from django.db import migrations, models


def seal_the_head(apps, schema_editor):
    from audit.chain import head_seal

    ChainHead = apps.get_model("audit", "ChainHead")
    for head in ChainHead.objects.all():
        head.seal = head_seal(head.last_seq, head.last_hash)
        head.save(update_fields=["seal"])


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_event_hash_index")]

    operations = [
        migrations.AddField(
            model_name="chainhead",
            name="seal",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(seal_the_head, migrations.RunPython.noop),
    ]
