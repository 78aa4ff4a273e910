"""The staff UI's admin section under /scp/admin/ (namespace `staff_admin`): settings, the
admin log and the screens of routing, accounts and tickets configuration. Each app's admin
views module lists its own URL patterns."""

from accounts import views_admin as accounts_admin
from routing import views_admin as routing_admin
from tickets import views_admin as tickets_admin

from . import views_admin

app_name = "staff_admin"
urlpatterns = [
    *views_admin.urlpatterns,
    *routing_admin.urlpatterns,
    *accounts_admin.urlpatterns,
    *tickets_admin.urlpatterns,
]
