"""Calling hours: when a campaign may start a call, in the contact's local time.

The campaign's weekly windows (``Campaign.calling_hours``) are read in the contact's own time
zone (``Contact.timezone``), else the campaign's, else the company's. The campaign's start and
end moments apply to every contact.
"""

from __future__ import annotations

import datetime
import zoneinfo

from campaigns.hours import DAY_NAMES, day_text, hhmm
from campaigns.models import Campaign


def zone_of(campaign: Campaign, name: str = "") -> zoneinfo.ZoneInfo:
    """The zone a contact's calling hours are read in: its own ``name``, else the campaign's (or company's)."""
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass  # checked on import; a zone removed from the tz database since reads as the campaign's
    return campaign.tz


def dates_reason(campaign: Campaign, now: datetime.datetime) -> str:
    """Why no contact of ``campaign`` may be called at ``now`` by its start and end moments, or ""."""
    if campaign.starts_at and now < campaign.starts_at:
        return f"starts at {campaign.starts_at.astimezone(campaign.tz):%Y-%m-%d %H:%M %Z}"
    if campaign.ends_at and now >= campaign.ends_at:
        return f"ended at {campaign.ends_at.astimezone(campaign.tz):%Y-%m-%d %H:%M %Z}"
    return ""


def hours_reason(campaign: Campaign, now: datetime.datetime, tz: zoneinfo.ZoneInfo | None = None) -> str:
    """Why a contact in ``tz`` (default: the campaign's) is outside the calling hours at ``now``, or ""."""
    tz = tz or campaign.tz
    local = now.astimezone(tz)
    windows = campaign.week.get(local.weekday(), [])
    if not windows:
        return f"no calls on {DAY_NAMES[local.weekday()]}s ({tz.key})"
    minute = local.hour * 60 + local.minute
    if any(start <= minute < end for start, end in windows):
        return ""
    return (f"outside calling hours ({day_text([[hhmm(s), hhmm(e)] for s, e in windows])} {tz.key}; "
            f"it is {local:%H:%M} there)")


def closed_reason(campaign: Campaign, now: datetime.datetime, tz: zoneinfo.ZoneInfo | None = None) -> str:
    """Why ``campaign`` may not start a call at ``now`` (aware) to a contact in ``tz``, or "" when it may."""
    return dates_reason(campaign, now) or hours_reason(campaign, now, tz)


def open_zones(campaign: Campaign, zones, now: datetime.datetime) -> tuple[list[str], str]:
    """Of contacts' ``zones`` ("" for the campaign's own), those inside calling hours at ``now``, and
    why the first closed one is closed ("" when all are open)."""
    opened, why = [], ""
    for name in sorted(zones):
        reason = hours_reason(campaign, now, zone_of(campaign, name))
        if reason:
            why = why or reason
        else:
            opened.append(name)
    return opened, why
