from django.urls import path

from pipelines import chat_views

urlpatterns = [
    path("<int:pk>/", chat_views.try_bot, name="try_bot"),
    path("stored-call/", chat_views.stored_call, name="stored_call"),  # a browser test call, after hang-up
]
