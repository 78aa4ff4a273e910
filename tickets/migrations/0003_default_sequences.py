from django.db import migrations


def create_sequences(apps, schema_editor):
    Sequence = apps.get_model("tickets", "Sequence")
    # osTicket's two sequences; tickets use random numbers unless TICKET_NUMBER_SEQUENCE names one.
    Sequence.objects.get_or_create(name="General Tickets")
    Sequence.objects.get_or_create(name="Tasks Sequence")


class Migration(migrations.Migration):
    dependencies = [("tickets", "0002_default_statuses_priorities")]
    operations = [migrations.RunPython(create_sequences, migrations.RunPython.noop)]
