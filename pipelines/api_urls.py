"""/api/v1/ resources of the pipelines app (see pipelines/api.py); included in voicebot/urls.py."""

from django.urls import path

from pipelines import api

urlpatterns = [
    path("bots/<slug:slug>/chat/", api.BotChatView.as_view(), name="api-bot-chat"),
    path("bots/<slug:slug>/chat/<uuid:conversation>/", api.BotChatConversationView.as_view(),
         name="api-bot-chat-conversation"),
]
