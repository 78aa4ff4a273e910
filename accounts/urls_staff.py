from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from tickets.views import staff_queues

from . import views, views_admin
from .decorators import agent_required

app_name = "staff"
urlpatterns = [
    path("", staff_queues.dashboard, name="home"),
    path("login/", views.StaffLoginView.as_view(), name="login"),
    path(
        "password/",
        agent_required(
            auth_views.PasswordChangeView.as_view(
                template_name="staff/password_change.html",
                success_url=reverse_lazy("staff:password_change_done"),
            )
        ),
        name="password_change",
    ),
    path(
        "password/done/",
        agent_required(
            auth_views.PasswordChangeDoneView.as_view(
                template_name="staff/password_change_done.html"
            )
        ),
        name="password_change_done",
    ),
    # The link in an agent's invitation: choose a password.
    path(
        "password/set/<uidb64>/<token>/",
        views_admin.PasswordSetView.as_view(),
        name="password_set",
    ),
    path(
        "logout/",
        auth_views.LogoutView.as_view(next_page=reverse_lazy("staff:login")),
        name="logout",
    ),
]
