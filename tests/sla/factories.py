from datetime import time
from decimal import Decimal

import factory

from sla.models import Holiday, Period, Schedule, SLAPlan


class ScheduleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Schedule
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Schedule {n}")
    timezone = "Europe/Berlin"

    @factory.post_generation
    def hours(self, create: bool, extracted: dict | None, **kwargs: object) -> None:
        """hours={weekday: [("09:00", "17:00"), ...]}; default Monday to Friday 9 to 17."""
        if extracted is None:
            extracted = {day: [("09:00", "17:00")] for day in range(5)}
        for weekday, periods in extracted.items():
            for start, end in periods:
                Period.objects.create(
                    schedule=self,
                    weekday=weekday,
                    start=time.fromisoformat(start),
                    end=time.fromisoformat(end),
                )


class SLAPlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SLAPlan

    name = factory.Sequence(lambda n: f"Plan {n}")
    first_response_hours = Decimal(2)
    resolution_hours = Decimal(8)


def holiday(schedule: Schedule, day, name: str = "Holiday", yearly: bool = False) -> Holiday:
    return Holiday.objects.create(schedule=schedule, date=day, name=name, is_yearly=yearly)
