"""A fresh help desk takes tickets at once: a Support department and osTicket's topics."""

from django.db import migrations


def create_defaults(apps, schema_editor):
    Department = apps.get_model("routing", "Department")
    HelpTopic = apps.get_model("routing", "HelpTopic")
    Team = apps.get_model("routing", "Team")
    Priority = apps.get_model("tickets", "Priority")
    if Department.objects.exists():
        return
    support = Department.objects.create(name="Support", is_public=True, is_active=True)
    normal = Priority.objects.filter(name="Normal").first()
    low = Priority.objects.filter(name="Low").first()
    HelpTopic.objects.create(name="General Inquiry", priority=normal, sort_order=1)
    HelpTopic.objects.create(name="Feedback", priority=low, sort_order=2)
    HelpTopic.objects.create(
        name="Report a Problem", priority=normal, department=support, sort_order=3
    )
    Team.objects.get_or_create(name="Level I Support")


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0002_initial"),
        ("tickets", "0002_default_statuses_priorities"),
    ]
    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
