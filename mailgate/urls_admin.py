"""URLs of the mail admin screens, included at /scp/admin/mail/."""

from django.urls import path

from . import views_admin as views

app_name = "mail_admin"
urlpatterns = [
    path("", views.index, name="index"),
    path("mailboxes/", views.mailbox_list, name="mailbox_list"),
    path("mailboxes/new/", views.mailbox_form, name="mailbox_create"),
    path("mailboxes/<int:pk>/", views.mailbox_form, name="mailbox_edit"),
    path("mailboxes/<int:pk>/activate/", views.mailbox_activate, name="mailbox_activate"),
    path("mailboxes/<int:pk>/deactivate/", views.mailbox_deactivate, name="mailbox_deactivate"),
    path("mailboxes/<int:pk>/test/", views.mailbox_test, name="mailbox_test"),
    path("mailboxes/<int:pk>/fetch/", views.mailbox_fetch, name="mailbox_fetch"),
    path("incoming/", views.inbound_list, name="inbound_list"),
    path("incoming/retry/", views.inbound_retry_bulk, name="inbound_retry_bulk"),
    path("incoming/<int:pk>/", views.inbound_detail, name="inbound_detail"),
    path("incoming/<int:pk>/retry/", views.inbound_retry, name="inbound_retry"),
    path("incoming/<int:pk>/raw/", views.inbound_raw, name="inbound_raw"),
    path("templates/", views.template_list, name="template_list"),
    path("templates/<str:code>/", views.template_edit, name="template_edit"),
    path("templates/<str:code>/preview/", views.template_preview, name="template_preview"),
    path("templates/<str:code>/reset/", views.template_reset, name="template_reset"),
]
