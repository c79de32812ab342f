"""Admin building blocks that keep each staff user inside their own companies.

Every admin of company-owned data derives from ``CompanyScopedAdmin``: its
list, change pages (URL guessing included: another company's row is "not
found"), foreign-key and many-to-many choices and list filters are limited to
the companies the user is staff of. Superusers see everything.
"""

from __future__ import annotations

from django.contrib import admin

from voicebot.models import Company


def scoped_queryset_for(model, user):
    """``model``'s rows that ``user`` may pick, or None for models that are not company data."""
    if model is Company:
        return Company.objects.for_user(user)
    if hasattr(model, "company_path"):
        return model._default_manager.for_user(user)
    return None


class CompanyScopedAdmin(admin.ModelAdmin):
    def get_queryset(self, request):
        return super().get_queryset(request).for_user(request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        queryset = scoped_queryset_for(db_field.related_model, request.user)
        if queryset is not None:
            kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        queryset = scoped_queryset_for(db_field.related_model, request.user)
        if queryset is not None:
            kwargs["queryset"] = queryset
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request):
        # Related filters list only values present in the user's own rows, so a
        # filter never shows another company's bot names.
        filters = []
        for item in super().get_list_filter(request):
            field = self.model._meta.get_field(item) if isinstance(item, str) and "__" not in item else None
            if field is not None and field.is_relation:
                filters.append((item, admin.RelatedOnlyFieldListFilter))
            else:
                filters.append(item)
        return filters


class CompanyScopedInline(admin.TabularInline):
    """Inline whose related choices are scoped like ``CompanyScopedAdmin``'s."""

    extra = 0

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        queryset = scoped_queryset_for(db_field.related_model, request.user)
        if queryset is not None:
            kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
