"""``{{ key|result_label }}``: an outcome's label as admin shows it ("Question answered", not "information")."""

from django import template

from postcall.models import CallOutcome

register = template.Library()
LABELS = dict(CallOutcome.Result.choices)


@register.filter
def result_label(key: str) -> str:
    return LABELS.get(key, key)
