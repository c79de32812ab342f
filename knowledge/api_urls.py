"""/api/v1/ resources of the knowledge app (see knowledge/api.py); included in voicebot/urls.py.

``bots/{slug}/knowledge/`` (list, upload) and ``bots/{slug}/knowledge/search/`` sit beside the
bots router's routes (``bots/{slug}/`` and its actions), which none of them matches.
"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from knowledge import api

router = SimpleRouter()
router.register("knowledge", api.KnowledgeDocumentViewSet, basename="knowledgedocument")

urlpatterns = [
    path("bots/<slug:slug>/knowledge/", api.BotKnowledgeViewSet.as_view({"get": "list", "post": "create"}),
         name="bot-knowledge"),
    path("bots/<slug:slug>/knowledge/search/", api.BotKnowledgeSearchViewSet.as_view({"post": "search"}),
         name="bot-knowledge-search"),
    *router.urls,
]
