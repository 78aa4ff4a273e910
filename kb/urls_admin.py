"""URLs of the canned responses' admin screens, included at /scp/admin/canned/."""

from django.urls import path
from django.views.decorators.http import require_POST

from .views_admin import canned_screen, guard

app_name = "kb_admin"
urlpatterns = [
    path("", guard(canned_screen.list_view), name="canned_list"),
    path("new/", guard(canned_screen.form_view), name="canned_create"),
    path("<int:pk>/", guard(canned_screen.form_view), name="canned_edit"),
    path("<int:pk>/delete/", guard(require_POST(canned_screen.delete_view)), name="canned_delete"),
]
