from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("scp/", include("accounts.urls_staff")),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls_portal")),
]
