"""The staff UI's ticket pages under /scp/tickets/: queues (views/staff_queues.py) and the
ticket page with its actions and attachments (views/staff_ticket.py). Each module lists its
own URL patterns."""

from .views import staff_queues, staff_ticket

app_name = "tickets_staff"
urlpatterns = staff_queues.urlpatterns + staff_ticket.urlpatterns
