from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import views

app_name = "staff"
urlpatterns = [
    path("", views.staff_home, name="home"),
    path("login/", views.StaffLoginView.as_view(), name="login"),
    path(
        "logout/",
        auth_views.LogoutView.as_view(next_page=reverse_lazy("staff:login")),
        name="logout",
    ),
]
