"""Which companies an API request may touch: the key's one (every one for an agency key),
or the staff user's; every queryset and every related-object choice goes through it."""

from voicebot.models import ApiKey, Company


def companies_for(request):
    if isinstance(request.auth, ApiKey):
        if request.auth.is_agency:
            return Company.objects.all()
        return Company.objects.filter(pk=request.auth.company_id)
    return Company.objects.for_user(request.user)


def default_company(request) -> Company | None:
    """The company a new object belongs to when the request names none: a company key's own,
    or the only company of a staff user; None when the request must say (agency keys)."""
    if isinstance(request.auth, ApiKey):
        return request.auth.company
    companies = list(Company.objects.for_user(request.user)[:2])
    return companies[0] if len(companies) == 1 else None


class CompanyScopedViewMixin:
    """Querysets of company data limited to the request's companies (``model.company_path``)."""

    queryset_model = None

    def get_queryset(self):
        model = self.queryset_model
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return model.objects.none()
        return model.objects.filter(**{f"{model.company_path}__in": companies_for(self.request)})

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False):
            context["companies"] = Company.objects.none()
            return context
        context["companies"] = companies_for(self.request)
        context["default_company"] = default_company(self.request)
        return context
