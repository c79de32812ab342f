"""Calling hours: when a campaign may start a call, in its own (or its company's) time zone."""

from __future__ import annotations

import datetime

from campaigns.models import WEEKDAYS, Campaign


def closed_reason(campaign: Campaign, now: datetime.datetime) -> str:
    """Why ``campaign`` may not start a call at ``now`` (aware), or "" when it may."""
    if campaign.starts_at and now < campaign.starts_at:
        return f"starts at {campaign.starts_at.astimezone(campaign.tz):%Y-%m-%d %H:%M %Z}"
    if campaign.ends_at and now >= campaign.ends_at:
        return f"ended at {campaign.ends_at.astimezone(campaign.tz):%Y-%m-%d %H:%M %Z}"
    local = now.astimezone(campaign.tz)
    if local.weekday() not in campaign.call_days:
        return f"no calls on {dict(WEEKDAYS)[local.weekday()]}s"
    if not campaign.window_start <= local.time().replace(tzinfo=None) < campaign.window_end:
        return (f"outside calling hours ({campaign.window_start:%H:%M}-{campaign.window_end:%H:%M} "
                f"{campaign.tz.key}; it is {local:%H:%M} there)")
    return ""
