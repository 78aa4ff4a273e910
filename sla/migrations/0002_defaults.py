"""The shipped SLA plan and schedule: "Default SLA" (the default of HELPDESK_DEFAULT_SLA;
first response within 8 hours, resolution within 48, in calendar hours, like osTicket's
default plan without a schedule) and an "Office hours" schedule, Monday to Friday 09:00 to
17:00 in UTC, for admins to adapt and give to plans."""

from datetime import time
from decimal import Decimal

from django.db import migrations


def forwards(apps, schema_editor):
    SLAPlan = apps.get_model("sla", "SLAPlan")
    Schedule = apps.get_model("sla", "Schedule")
    Period = apps.get_model("sla", "Period")
    SLAPlan.objects.get_or_create(
        name="Default SLA",
        defaults={"first_response_hours": Decimal(8), "resolution_hours": Decimal(48)},
    )
    schedule, created = Schedule.objects.get_or_create(
        name="Office hours", defaults={"timezone": "UTC"}
    )
    if created:
        Period.objects.bulk_create(
            Period(schedule=schedule, weekday=day, start=time(9), end=time(17)) for day in range(5)
        )


class Migration(migrations.Migration):
    dependencies = [("sla", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
