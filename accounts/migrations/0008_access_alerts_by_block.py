"""The access alert scan reads sealed blocks (audit.ledger), not event numbers: its
cursor becomes the last block whose events it has all read. The old cursor's number may
fall inside a block (the old chain was sealed in blocks of 20,000); the block before it
is taken, so a look is told twice at worst (and folded into an alert within the hour),
never missed."""

from django.db import migrations, models


def cursor_to_block(apps, schema_editor):
    Cursor = apps.get_model("accounts", "AccessAlertCursor")
    BlockMember = apps.get_model("audit", "BlockMember")
    Block = apps.get_model("audit", "Block")
    for cursor in Cursor.objects.filter(last_seq__gt=0):
        first_unread = (
            BlockMember.objects.filter(event__seq__gt=cursor.last_seq)
            .order_by("block__number")
            .values_list("block__number", flat=True)
            .first()
        )
        if first_unread is None:
            last = Block.objects.order_by("-number").values_list("number", flat=True).first()
            cursor.last_block = last or 0
        else:
            cursor.last_block = first_unread - 1
        cursor.save(update_fields=["last_block"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_proxy_access"),
        ("audit", "0008_ledger"),
    ]

    operations = [
        migrations.AddField(
            model_name="accessalertcursor",
            name="last_block",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(cursor_to_block, migrations.RunPython.noop),
    ]
