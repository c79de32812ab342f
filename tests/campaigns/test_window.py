"""Calling hours are read in the campaign's time zone (or its company's), days and DST included."""

import datetime
import zoneinfo

from campaigns.models import Campaign
from campaigns.window import closed_reason
from voicebot.models import Company

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def campaign(**overrides) -> Campaign:
    values = {"company": Company(name="Alpha", timezone="Europe/Berlin"), "timezone": "",
              "call_days": [0, 1, 2, 3, 4], "window_start": datetime.time(9), "window_end": datetime.time(18)}
    values.update(overrides)
    return Campaign(**values)


def at(*args, tz=BERLIN) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=tz)


def test_open_inside_hours_on_a_weekday_of_the_companys_zone():
    assert closed_reason(campaign(), at(2026, 12, 2, 9, 0)) == ""  # a Wednesday, 09:00 in Berlin
    assert closed_reason(campaign(), at(2026, 12, 2, 17, 59)) == ""


def test_closed_at_the_end_and_before_the_start():
    assert "outside calling hours (09:00-18:00 Europe/Berlin; it is 18:00 there)" == closed_reason(
        campaign(), at(2026, 12, 2, 18, 0))
    assert "it is 08:59 there" in closed_reason(campaign(), at(2026, 12, 2, 8, 59))


def test_a_utc_instant_is_read_in_berlin():
    # 08:30 UTC is 09:30 in Berlin (winter): open; 17:30 UTC is 18:30: closed.
    assert closed_reason(campaign(), at(2026, 12, 2, 8, 30, tz=datetime.UTC)) == ""
    assert closed_reason(campaign(), at(2026, 12, 2, 17, 30, tz=datetime.UTC)) != ""


def test_summer_time_moves_the_window_in_utc():
    # 07:30 UTC is 09:30 in Berlin in July (UTC+2), 08:30 in December (UTC+1).
    assert closed_reason(campaign(), at(2026, 7, 1, 7, 30, tz=datetime.UTC)) == ""
    assert closed_reason(campaign(), at(2026, 12, 2, 7, 30, tz=datetime.UTC)) != ""


def test_days_are_local_days():
    assert closed_reason(campaign(), at(2026, 12, 5, 12, 0)) == "no calls on Saturdays"
    # Friday 23:30 in New York is Saturday in Berlin: the campaign's own zone decides.
    friday_ny = at(2026, 12, 4, 23, 30, tz=zoneinfo.ZoneInfo("America/New_York"))
    assert closed_reason(campaign(window_end=datetime.time(23, 59)), friday_ny) == "no calls on Saturdays"
    ny = campaign(timezone="America/New_York", window_end=datetime.time(23, 59))
    assert closed_reason(ny, friday_ny) == ""


def test_start_and_end_moments():
    c = campaign(starts_at=at(2026, 12, 3, 10, 0), ends_at=at(2026, 12, 4, 10, 0))
    assert closed_reason(c, at(2026, 12, 3, 9, 59)) == "starts at 2026-12-03 10:00 CET"
    assert closed_reason(c, at(2026, 12, 3, 10, 0)) == ""
    assert closed_reason(c, at(2026, 12, 4, 10, 0)) == "ended at 2026-12-04 10:00 CET"
