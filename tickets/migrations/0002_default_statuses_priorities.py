from django.db import migrations

STATUSES = [
    # name, state, default for its state
    ("Open", "open", True),
    ("In Progress", "open", False),
    ("Waiting on Customer", "open", False),
    ("Resolved", "closed", False),
    ("Closed", "closed", True),
    ("Archived", "archived", True),
    ("Deleted", "deleted", True),
]
PRIORITIES = [
    # name, urgency (1 is the most urgent), colour, default
    ("Emergency", 1, "#FEE7E7", False),
    ("High", 2, "#FEE7E7", False),
    ("Normal", 3, "#FFFFF0", True),
    ("Low", 4, "#DDFFDD", False),
]


def create_defaults(apps, schema_editor):
    TicketStatus = apps.get_model("tickets", "TicketStatus")
    Priority = apps.get_model("tickets", "Priority")
    for order, (name, state, is_default) in enumerate(STATUSES, start=1):
        TicketStatus.objects.get_or_create(
            name=name, defaults={"state": state, "is_default": is_default, "sort_order": order}
        )
    for name, urgency, color, is_default in PRIORITIES:
        Priority.objects.get_or_create(
            name=name, defaults={"urgency": urgency, "color": color, "is_default": is_default}
        )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]
    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
