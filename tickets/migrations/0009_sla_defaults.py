"""SLA defaults for the shipped statuses and roles: "Waiting on Customer" pauses the SLA,
"Resolved" closes automatically, and the roles that may edit tickets may set a due date by
hand (`ticket.due_override`)."""

from django.db import migrations

ROLES_WITH_DUE_OVERRIDE = ["All Access", "Expanded Access", "Administrator"]


def forwards(apps, schema_editor):
    TicketStatus = apps.get_model("tickets", "TicketStatus")
    Role = apps.get_model("accounts", "Role")
    TicketStatus.objects.filter(name="Waiting on Customer", state="open").update(pauses_sla=True)
    TicketStatus.objects.filter(name="Resolved", state="closed").update(auto_close=True)
    for role in Role.objects.filter(name__in=ROLES_WITH_DUE_OVERRIDE):
        if "ticket.due_override" not in role.permissions:
            role.permissions = sorted([*role.permissions, "ticket.due_override"])
            role.save(update_fields=["permissions"])


def backwards(apps, schema_editor):
    Role = apps.get_model("accounts", "Role")
    for role in Role.objects.all():
        if "ticket.due_override" in (role.permissions or []):
            role.permissions = [p for p in role.permissions if p != "ticket.due_override"]
            role.save(update_fields=["permissions"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_default_roles"),
        ("tickets", "0008_sla_locks"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
