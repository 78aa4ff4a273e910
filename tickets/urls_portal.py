"""The customer portal's ticket pages: open a ticket, my tickets, a ticket, guest access
(views/portal.py)."""

from .views import portal

app_name = "tickets_portal"
urlpatterns = portal.urlpatterns
