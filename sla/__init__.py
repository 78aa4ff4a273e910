"""SLA plans, business-hours schedules and holidays, due dates and the scheduled jobs.

`sla.due_dates(plan, start)` is the one due-date function (the admin preview and the API
call it); it is loaded on first use so that importing the package never imports models
before the app registry is ready.
"""

from typing import Any

__all__ = ["DueDates", "due_dates"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import duedates

        return getattr(duedates, name)
    raise AttributeError(f"module 'sla' has no attribute {name!r}")
