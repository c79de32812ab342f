"""Serializer bases of the API: company data, with every related choice in the request's companies."""

from __future__ import annotations

import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import QueryDict
from rest_framework import serializers

from voicebot.models import Company


def scope_related_field(field, companies) -> None:
    """Limit a related field's choices (one, or many) to rows of ``companies``."""
    target = field.child_relation if isinstance(field, serializers.ManyRelatedField) else field
    if not isinstance(target, serializers.RelatedField) or target.read_only or target.queryset is None:
        return
    model = target.queryset.model
    if model is Company:
        target.queryset = companies
    elif hasattr(model, "company_path"):
        target.queryset = model.objects.filter(**{f"{model.company_path}__in": companies})


class ModelCleanMixin:
    """Run the model's ``clean()`` on the object as it would be saved: the admin's validation,
    with its errors on the fields they name. Values ``clean()`` normalises (scenarios, rules)
    are saved in their normalised form."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        model = self.Meta.model
        candidate = copy.copy(self.instance) if self.instance is not None else model()
        concrete = {field.name for field in model._meta.concrete_fields}
        for name, value in attrs.items():
            if name in concrete:
                setattr(candidate, name, value)
        try:
            candidate.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) \
                from None
        return {name: getattr(candidate, name) if name in concrete else value for name, value in attrs.items()}


class CompanyScopedSerializer(ModelCleanMixin, serializers.ModelSerializer):
    """Every related choice (``company``, ``bot``, documents...) limited to the request's companies.

    ``company`` may be omitted where the request has a default company (a company key,
    a staff user of one company); an agency key must name it. Validation is the admin's
    (``ModelCleanMixin``).
    """

    def get_fields(self):
        fields = super().get_fields()
        companies = self.context.get("companies", Company.objects.none())
        for field in fields.values():
            scope_related_field(field, companies)
        if "company" in fields and not fields["company"].read_only:
            fields["company"].required = False  # a company key's own; agency keys must name it (validate)
        return fields

    def to_internal_value(self, data):
        default = self.context.get("default_company")
        if self.instance is None and "company" in self.fields and default is not None and hasattr(data, "keys") \
                and "company" not in data:
            # Before validation, so that unique-together checks see the company too.
            data = data.copy() if isinstance(data, QueryDict) else dict(data)
            data["company"] = default.pk
        return super().to_internal_value(data)

    def validate(self, attrs):
        company = attrs.get("company") or getattr(self.instance, "company", None)
        if company is None and "company" in self.fields and not self.fields["company"].read_only:
            raise serializers.ValidationError({"company": "This field is required: this key or user acts for "
                                                          "several companies; name the one this belongs to."})
        bot = attrs.get("bot")
        if bot is not None and company is not None and bot.company_id != company.pk:
            raise serializers.ValidationError({"bot": "This bot belongs to another company."})
        return super().validate(attrs)
