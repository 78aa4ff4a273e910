from django.urls import path

from . import views_portal as views

app_name = "kb_portal"
urlpatterns = [
    path("", views.index, name="index"),
    path("search/", views.search, name="search"),
    path("suggest/", views.suggest, name="suggest"),
    path("files/<int:pk>/<path:filename>", views.attachment, name="attachment"),
    path("c/<slug:slug>/", views.category, name="category"),
    path("<slug:slug>/", views.article, name="article"),
    path("<slug:slug>/vote/", views.vote, name="vote"),
]
