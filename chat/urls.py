from django.urls import path

from . import views

urlpatterns = [
    path("c/new/", views.conversation_create, name="conversation_create"),
    path("c/<str:conversation_id>/", views.conversation_detail, name="conversation"),
    path("c/<str:conversation_id>/rename/", views.conversation_rename, name="conversation_rename"),
    path("c/<str:conversation_id>/delete/", views.conversation_delete, name="conversation_delete"),
    path("c/<str:conversation_id>/stop/", views.conversation_stop, name="conversation_stop"),
]
