"""URLs of the staff UI's knowledge base, included at /scp/kb/."""

from django.urls import path

from . import views_staff as views

app_name = "kb_staff"
urlpatterns = [
    path("", views.article_list, name="article_list"),
    path("articles/new/", views.article_create, name="article_create"),
    path("articles/<int:pk>/", views.article_detail, name="article_detail"),
    path("articles/<int:pk>/edit/", views.article_edit, name="article_edit"),
    path("articles/<int:pk>/delete/", views.article_delete, name="article_delete"),
    path("preview/", views.preview, name="preview"),
    path("categories/", views.category_list, name="category_list"),
    path("categories/new/", views.category_create, name="category_create"),
    path("categories/<int:pk>/", views.category_edit, name="category_edit"),
    path("categories/<int:pk>/delete/", views.category_delete, name="category_delete"),
    path("stats/", views.stats, name="stats"),
    path("tickets/<str:number>/insert/", views.insert, name="insert"),
]
