"""/api/v1/ knowledge: a bot's documents (upload, list), every document (read, delete, ingest again)
and the search a bot makes, thin over ``knowledge.services`` and ``knowledge.search``.

``POST /bots/{slug}/knowledge/`` takes one or several files (multipart, field ``files``
repeated, or ``file``), stores them for the bot's company and links them to the bot; each
file gets its own outcome, as in admin: ``queued`` (ingestion queued), ``replaced`` (a new
version of a document of the same name, replacing it once ingested), ``duplicate`` (the
same bytes are a document already: it is linked to the bot, not ingested again),
``failed`` (empty, unsupported or disguised: the document records why) or ``rejected``
(over the size limit: nothing stored). ``POST /bots/{slug}/knowledge/search/`` runs the
search a call of the bot runs, with the bot's own ``knowledge_top_k`` and
``knowledge_score_threshold`` unless the request gives others.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import mixins, parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from knowledge import services
from knowledge.filetypes import max_upload_bytes
from knowledge.models import KnowledgeDocument
from knowledge.search import search
from voicebot.api.errors import Conflict, field_error
from voicebot.api.filters import apply_filters
from voicebot.api.scoping import CompanyScopedViewMixin, companies_for
from voicebot.models import Bot

UPLOAD_OUTCOMES = ("queued", "replaced", "duplicate", "failed", "rejected")
SLUG_PARAMETER = OpenApiParameter("slug", str, OpenApiParameter.PATH, pattern=r"^[-a-zA-Z0-9_]+$",
                                  description="The bot's slug.")
STATUS_PARAMETER = OpenApiParameter("status", str, enum=KnowledgeDocument.Status.values,
                                    description="Only documents in this ingestion status.")


class KnowledgeDocumentSerializer(serializers.ModelSerializer):
    """A document and where its ingestion stands (``error`` says why it failed)."""

    bots = serializers.SlugRelatedField(many=True, read_only=True, slug_field="slug",
                                        help_text="The slugs of the bots that answer from this document.")

    class Meta:
        model = KnowledgeDocument
        fields = ["id", "company", "name", "file_type", "size_bytes", "status", "progress", "error", "pages",
                  "chunk_count", "bots", "created_at", "updated_at", "ingested_at"]
        read_only_fields = fields


class KnowledgeUploadSerializer(serializers.Serializer):
    """The multipart body of an upload (documents the request; the view reads the files itself)."""

    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), required=False,
                                  help_text="One or several files (repeat the field): PDF, DOCX, TXT, CSV, Markdown "
                                            "or HTML.")
    file = serializers.FileField(required=False, allow_empty_file=True, help_text="One file (instead of files).")


class KnowledgeUploadResultSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The file's name as stored.")
    outcome = serializers.ChoiceField(choices=UPLOAD_OUTCOMES, help_text=(
        "queued: stored, ingestion queued; replaced: a new version of the document of this name, which it replaces "
        "once ingested; duplicate: the same content is a document already (now linked to this bot too); failed: "
        "not readable (empty, unsupported or disguised type), recorded with the reason; rejected: over the size "
        "limit, not stored."))
    message = serializers.CharField(help_text="What happened to this file, in words.")
    document = KnowledgeDocumentSerializer(allow_null=True, help_text="The document; null when rejected.")


class KnowledgeUploadResponseSerializer(serializers.Serializer):
    results = KnowledgeUploadResultSerializer(many=True, help_text="One entry per file, in the order they were sent.")


class KnowledgeSearchSerializer(serializers.Serializer):
    query = serializers.CharField(max_length=2000, help_text="What a caller might ask.")
    top_k = serializers.IntegerField(min_value=1, max_value=20, required=False,
                                     help_text="How many passages at most; the bot's knowledge_top_k if left out.")
    threshold = serializers.FloatField(min_value=0.0, max_value=1.0, required=False,
                                       help_text="Lowest similarity (0-1) of a passage; the bot's "
                                                 "knowledge_score_threshold if left out.")


class KnowledgePassageSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="The passage (a chunk of the document).")
    score = serializers.FloatField(help_text="Cosine similarity to the query, 0-1: higher is closer.")
    document = serializers.IntegerField(source="document_id", help_text="The document's id.")
    document_name = serializers.CharField(source="document", help_text="The document's name.")
    page = serializers.IntegerField(allow_null=True, help_text="The page it is on (PDF, DOCX, TXT), or null.")
    section = serializers.CharField(allow_blank=True, help_text="The heading it is under, or empty.")
    chunk = serializers.IntegerField(source="chunk_id", help_text="The chunk's id.")


class KnowledgeSearchResultSerializer(serializers.Serializer):
    query = serializers.CharField()
    top_k = serializers.IntegerField(help_text="The number of passages asked for.")
    threshold = serializers.FloatField(help_text="The lowest similarity kept.")
    use_knowledge = serializers.BooleanField(
        help_text="Whether the bot answers from its knowledge in calls (false: these passages are not used).")
    results = KnowledgePassageSerializer(many=True, help_text="The passages the bot would find, best first.")


class BotScopedMixin(CompanyScopedViewMixin):
    """Views under /bots/{slug}/: the bot, of the request's companies (404 otherwise)."""

    queryset_model = KnowledgeDocument

    def get_bot(self) -> Bot:
        bot = (Bot.objects.filter(company__in=companies_for(self.request), slug=self.kwargs["slug"])
               .select_related("company").first())
        if bot is None:
            raise NotFound("No such bot.")
        return bot


@extend_schema(tags=["knowledge"], parameters=[SLUG_PARAMETER])
class BotKnowledgeViewSet(BotScopedMixin, viewsets.GenericViewSet):
    """A bot's knowledge documents: list them, upload more."""

    serializer_class = KnowledgeDocumentSerializer
    parser_classes = (parsers.MultiPartParser,)

    @extend_schema(operation_id="bots_knowledge_list", parameters=[STATUS_PARAMETER],
                   responses=KnowledgeDocumentSerializer(many=True))
    def list(self, request, slug=None):
        """The documents linked to the bot, newest first."""
        bot = self.get_bot()
        documents = (super().get_queryset().filter(bots=bot).prefetch_related("bots")
                     .order_by("-created_at", "-pk"))
        documents = apply_filters(documents, request.query_params, {"status": "status"})
        page = self.paginate_queryset(documents)
        return self.get_paginated_response(KnowledgeDocumentSerializer(page, many=True).data)

    @extend_schema(
        operation_id="bots_knowledge_upload",
        request={"multipart/form-data": KnowledgeUploadSerializer},
        responses={201: KnowledgeUploadResponseSerializer, 200: KnowledgeUploadResponseSerializer},
        examples=[OpenApiExample("A new file and one too large", response_only=True,
                                 status_codes=["201"], value={"results": [
                                     {"name": "prices.pdf", "outcome": "queued",
                                      "message": "File prices.pdf: queued for ingestion.",
                                      "document": {"id": 12, "company": 3, "name": "prices.pdf", "file_type": "pdf",
                                                   "size_bytes": 48213, "status": "pending", "progress": 0,
                                                   "error": "", "pages": None, "chunk_count": 0,
                                                   "bots": ["alpha-desk"], "created_at": "2026-12-01T09:00:00Z",
                                                   "updated_at": "2026-12-01T09:00:00Z", "ingested_at": None}},
                                     {"name": "huge.pdf", "outcome": "rejected",
                                      "message": "File huge.pdf: 31.0 MB is over the 25 MB limit for knowledge "
                                                 "files.",
                                      "document": None}]})],
    )
    def create(self, request, slug=None):
        """Upload one or several files for the bot (multipart ``files``, repeated, or ``file``): each is stored for
        the bot's company, linked to the bot and queued for ingestion; watch ``status`` in the list. 201 when a
        document was created, 200 when none was (duplicates, replacements, rejected files)."""
        bot = self.get_bot()
        files = request.FILES.getlist("files") + request.FILES.getlist("file")
        if not files:
            raise field_error("files", "Send one or more files as multipart/form-data field 'files' (or 'file'); "
                                       f"each at most {max_upload_bytes() // 1048576} MB.")
        results = services.upload_documents(bot.company, files, [bot])
        documents = {document.pk: document for document in KnowledgeDocument.objects.filter(
            pk__in=[result.document.pk for result in results if result.document is not None],
        ).prefetch_related("bots")}
        for result in results:  # as they are now, with their bots
            if result.document is not None:
                result.document = documents.get(result.document.pk)
        created = any(result.outcome in ("queued", "failed") and result.document is not None for result in results)
        body = KnowledgeUploadResponseSerializer({"results": results}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(tags=["knowledge"], parameters=[SLUG_PARAMETER])
class BotKnowledgeSearchViewSet(BotScopedMixin, viewsets.GenericViewSet):
    """What a bot finds in its knowledge for a question."""

    serializer_class = KnowledgeSearchSerializer
    parser_classes = (parsers.JSONParser,)
    read_actions = ("search",)  # changes nothing: read-only keys may search

    @extend_schema(
        operation_id="bots_knowledge_search",
        request=KnowledgeSearchSerializer, responses=KnowledgeSearchResultSerializer,
        examples=[
            OpenApiExample("A question", request_only=True, value={"query": "How much is a pedicure?"}),
            OpenApiExample("The passages found", response_only=True, value={
                "query": "How much is a pedicure?", "top_k": 3, "threshold": 0.3, "use_knowledge": True,
                "results": [{"text": "Manicure costs 25 dollars. A pedicure costs 40 dollars.", "score": 0.71,
                             "document": 12, "document_name": "prices.pdf", "page": 1, "section": "Price list",
                             "chunk": 301}]}),
        ],
    )
    def search(self, request, slug=None):
        """The passages a call of this bot would retrieve for ``query``: the bot's documents that are ready, with
        its ``knowledge_top_k`` and ``knowledge_score_threshold`` unless ``top_k``/``threshold`` are given."""
        bot = self.get_bot()
        form = KnowledgeSearchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        query = form.validated_data["query"]
        top_k = form.validated_data.get("top_k", bot.knowledge_top_k)
        threshold = form.validated_data.get("threshold", bot.knowledge_score_threshold)
        passages = search(bot, query, top_k=top_k, threshold=threshold)
        return Response(KnowledgeSearchResultSerializer({"query": query, "top_k": top_k, "threshold": threshold,
                                                "use_knowledge": bot.use_knowledge, "results": passages}).data)


@extend_schema(parameters=[
    OpenApiParameter("bot", str, description="Only the documents of this bot (its slug)."),
    STATUS_PARAMETER,
    OpenApiParameter("company", int, description="Only this company's documents."),
])
class KnowledgeDocumentViewSet(CompanyScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                               mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Every knowledge document of the request's companies; ``reingest`` queues one's ingestion again."""

    queryset_model = KnowledgeDocument
    serializer_class = KnowledgeDocumentSerializer
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        queryset = super().get_queryset().prefetch_related("bots").order_by("-created_at", "-pk")
        if self.action == "list":
            queryset = apply_filters(queryset, self.request.query_params,
                                     {"bot": "bots__slug", "status": "status", "company": "company"})
        return queryset

    def perform_destroy(self, document):
        """The document, its chunks and its stored file; the bots stop answering from it."""
        services.delete_document(document)

    @extend_schema(operation_id="knowledge_reingest", request=None, responses=KnowledgeDocumentSerializer)
    @action(detail=True, methods=["post"])
    def reingest(self, request, pk=None):
        """Queue the document's ingestion again (after a model change or a fixed bug): it comes back ``pending``.
        409 when the upload was refused and no file was kept: upload the file again instead."""
        document = self.get_object()
        if not services.reingest([document]):
            raise Conflict("This upload was refused and no file was kept; upload the file again.",
                           fields={"file": ["No stored file to ingest."]})
        document.refresh_from_db()
        return Response(KnowledgeDocumentSerializer(document).data)
