"""Which companies an API request may touch: the key's one, or the staff user's."""

from voicebot.models import ApiKey, Company


def companies_for(request):
    if isinstance(request.auth, ApiKey):
        return Company.objects.filter(pk=request.auth.company_id)
    return Company.objects.for_user(request.user)


class CompanyScopedViewMixin:
    """Querysets of company data limited to the request's companies."""

    queryset_model = None

    def get_queryset(self):
        model = self.queryset_model
        return model.objects.filter(**{f"{model.company_path}__in": companies_for(self.request)})

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["companies"] = companies_for(self.request)
        return context
