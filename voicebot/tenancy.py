"""Tenant scoping: every query on company data goes through the company.

A superuser sees every company. Any other user sees only the companies whose
``staff`` includes them, and only rows that belong to those companies. Models
owned by a company use ``CompanyScopedManager`` (or its queryset) and declare
``company_path``: the lookup from the model to its Company
(``"company"`` for Bot, ``"call__company"`` for CallTurn, ...).
"""

from __future__ import annotations

from django.db import models


def can_see_all(user) -> bool:
    return bool(user and user.is_active and user.is_superuser)


class CompanyScopedQuerySet(models.QuerySet):
    def for_company(self, company):
        return self.filter(**{self.model.company_path: company})

    def for_user(self, user):
        """Rows of the companies ``user`` is assigned to (all for superusers)."""
        if can_see_all(user):
            return self.all()
        from voicebot.models import Company

        # Through a subquery, so rows never multiply by the number of staff.
        company_ids = Company.objects.for_user(user).values("pk")
        return self.filter(**{f"{self.model.company_path}__in": company_ids})


class CompanyScopedManager(models.Manager.from_queryset(CompanyScopedQuerySet)):
    pass
