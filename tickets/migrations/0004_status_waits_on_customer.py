from django.db import migrations, models


def mark_waiting_on_customer(apps, schema_editor):
    TicketStatus = apps.get_model("tickets", "TicketStatus")
    TicketStatus.objects.filter(name="Waiting on Customer").update(waits_on_customer=True)


class Migration(migrations.Migration):
    dependencies = [("tickets", "0003_default_sequences")]

    operations = [
        migrations.AddField(
            model_name="ticketstatus",
            name="waits_on_customer",
            field=models.BooleanField(
                default=False,
                help_text="A message from the customer moves the ticket back to the default open status.",
                verbose_name="waits on the customer",
            ),
        ),
        migrations.RunPython(mark_waiting_on_customer, migrations.RunPython.noop),
    ]
