"""The default roles, as osTicket ships them, plus an Administrator role holding everything.

osTicket 1.18's Limited Access lacks `ticket.reply` and `task.create` through a missing comma
in its YAML; here it has both, as osTicket intends."""

from django.db import migrations

TICKET = [
    "ticket.create",
    "ticket.edit",
    "ticket.merge",
    "ticket.link",
    "ticket.markanswered",
    "ticket.assign",
    "ticket.release",
    "ticket.transfer",
    "ticket.refer",
    "ticket.reply",
    "ticket.close",
    "ticket.delete",
]
TASK = [
    "task.create",
    "task.edit",
    "task.assign",
    "task.transfer",
    "task.reply",
    "task.close",
    "task.delete",
]
PEOPLE = ["user.create", "user.edit", "user.dir", "org.create", "org.edit"]

ROLES = {
    "All Access": TICKET + TASK + ["canned.manage", "thread.edit", "kb.manage"] + PEOPLE,
    "Expanded Access": [
        "ticket.create",
        "ticket.edit",
        "ticket.merge",
        "ticket.link",
        "ticket.assign",
        "ticket.release",
        "ticket.transfer",
        "ticket.refer",
        "ticket.reply",
        "ticket.close",
        "task.create",
        "task.edit",
        "task.assign",
        "task.transfer",
        "task.reply",
        "task.close",
        "canned.manage",
        "user.dir",
    ],
    "Limited Access": [
        "ticket.create",
        "ticket.merge",
        "ticket.link",
        "ticket.assign",
        "ticket.release",
        "ticket.transfer",
        "ticket.refer",
        "ticket.reply",
        "task.create",
        "task.assign",
        "task.transfer",
        "task.reply",
    ],
    "View Only": [],
}
ADMIN_EXTRA = [
    "user.delete",
    "user.manage",
    "org.delete",
    "emails.banlist",
    "visibility.agents",
    "visibility.departments",
    "stats.agents",
    "search.all",
    "admin.settings",
    "admin.staff",
    "admin.routing",
    "admin.sla",
    "admin.email",
    "admin.api",
]


def create_roles(apps, schema_editor):
    Role = apps.get_model("accounts", "Role")
    for name, permissions in ROLES.items():
        Role.objects.get_or_create(name=name, defaults={"permissions": permissions})
    Role.objects.get_or_create(
        name="Administrator",
        defaults={"permissions": sorted(set(ROLES["All Access"] + ADMIN_EXTRA))},
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_initial")]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
