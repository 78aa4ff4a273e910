"""SLA plans, business-hours schedules and holidays: built with the SLA issue."""
