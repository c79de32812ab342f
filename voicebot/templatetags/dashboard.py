"""``{% company_dashboard as dashboard %}``: the admin index's figures for the request's user."""

from __future__ import annotations

from django import template

from voicebot.dashboard import build_dashboard

register = template.Library()


@register.simple_tag(takes_context=True)
def company_dashboard(context):
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return None
    return build_dashboard(user=request.user, company_id=request.GET.get("company"))
