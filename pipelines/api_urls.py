"""/api/v1/ resources of the pipelines app (see pipelines/api.py); included in voicebot/urls.py.

The path parts match anything up to the next slash: a bot slug or conversation id that
cannot exist is the view's 404 (the API's error shape), never an unmatched URL.
"""

from django.urls import re_path

from pipelines import api

urlpatterns = [
    re_path(r"^bots/(?P<slug>[^/]+)/chat/$", api.BotChatView.as_view(), name="api-bot-chat"),
    re_path(r"^bots/(?P<slug>[^/]+)/chat/(?P<conversation>[^/]+)/$", api.BotChatConversationView.as_view(),
            name="api-bot-chat-conversation"),
]
