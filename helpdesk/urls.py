from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("scp/admin/sla/", include("sla.urls")),
    path("scp/admin/api/", include("api.views_admin")),
    path("scp/admin/mail/", include("mailgate.urls_admin")),
    path("scp/admin/canned/", include("kb.urls_admin")),
    path("scp/admin/", include("helpdesk.urls_admin")),
    path("scp/tickets/", include("tickets.urls_staff")),
    path("scp/kb/", include("kb.urls_staff")),
    path("scp/", include("accounts.urls_staff")),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("tickets/", include("tickets.urls_portal")),
    path("kb/", include("kb.urls_portal")),
    path("", include("accounts.urls_portal")),
]
