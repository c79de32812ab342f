from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from voicebot import health


@never_cache
@require_GET
def healthz(request):
    """JSON state of the database, Redis and local models; 503 when any is down."""
    body = health.report()
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
