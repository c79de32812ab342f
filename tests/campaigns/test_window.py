"""Calling hours: windows per weekday, read in the contact's zone, else the campaign's, else the company's."""

import datetime
import zoneinfo

import pytest
from django.core.exceptions import ValidationError

from campaigns import hours
from campaigns.models import Campaign
from campaigns.window import closed_reason, open_zones
from voicebot.models import Company

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
OFFICE = {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "wed": [["09:00", "12:00"], ["13:00", "18:00"]],
          "thu": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]], "sat": [["10:00", "13:00"]]}


def campaign(**overrides) -> Campaign:
    values = {"company": Company(name="Alpha", timezone="Europe/Berlin"), "timezone": "", "calling_hours": OFFICE}
    values.update(overrides)
    return Campaign(**values)


def at(*args, tz=BERLIN) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=tz)


def test_each_weekday_has_its_own_windows():
    c = campaign()
    assert closed_reason(c, at(2026, 12, 2, 9, 0)) == ""  # a Wednesday, 09:00 in Berlin
    assert closed_reason(c, at(2026, 12, 2, 12, 30)) == (
        "outside calling hours (09:00-12:00, 13:00-18:00 Europe/Berlin; it is 12:30 there)")  # lunch
    assert closed_reason(c, at(2026, 12, 2, 17, 59)) == ""
    assert closed_reason(c, at(2026, 12, 3, 17, 0)) == (
        "outside calling hours (09:00-17:00 Europe/Berlin; it is 17:00 there)")  # Thursday: the end is excluded
    assert closed_reason(c, at(2026, 12, 5, 10, 0)) == ""  # Saturday 10:00-13:00
    assert "it is 13:00 there" in closed_reason(c, at(2026, 12, 5, 13, 0))
    assert closed_reason(c, at(2026, 12, 6, 11, 0)) == "no calls on Sundays (Europe/Berlin)"


def test_a_utc_instant_is_read_in_the_zone_summer_time_included():
    # 07:30 UTC is 09:30 in Berlin in July (UTC+2), 08:30 in December (UTC+1).
    assert closed_reason(campaign(), at(2026, 7, 1, 7, 30, tz=datetime.UTC)) == ""
    assert closed_reason(campaign(), at(2026, 12, 2, 7, 30, tz=datetime.UTC)) != ""


def test_the_contacts_zone_decides_then_the_campaigns_then_the_companys():
    # 08:00 UTC on a Wednesday: 09:00 in Berlin (open), 03:00 in New York (closed).
    now = at(2026, 12, 2, 8, 0, tz=datetime.UTC)
    assert open_zones(campaign(), ["", "America/New_York", "Europe/Berlin"], now) == (
        ["", "Europe/Berlin"], "outside calling hours (09:00-12:00, 13:00-18:00 America/New_York; it is 03:00 there)")
    assert open_zones(campaign(timezone="America/New_York"), ["", "Europe/Berlin"], now)[0] == ["Europe/Berlin"]
    # At 14:00 UTC both are open: 15:00 in Berlin, 09:00 in New York (13:00 UTC is still 08:00 there in winter).
    assert open_zones(campaign(), ["", "America/New_York"], at(2026, 12, 2, 14, 0, tz=datetime.UTC))[0] == [
        "", "America/New_York"]
    # Friday 23:30 in New York is Saturday in Berlin: each contact's own day counts.
    friday_ny = at(2026, 12, 4, 23, 30, tz=NEW_YORK)
    late = campaign(calling_hours={"fri": [["09:00", "24:00"]]})
    assert closed_reason(late, friday_ny) == "no calls on Saturdays (Europe/Berlin)"
    assert closed_reason(late, friday_ny, NEW_YORK) == ""


def test_start_and_end_moments():
    c = campaign(starts_at=at(2026, 12, 3, 10, 0), ends_at=at(2026, 12, 4, 10, 0))
    assert closed_reason(c, at(2026, 12, 3, 9, 59)) == "starts at 2026-12-03 10:00 CET"
    assert closed_reason(c, at(2026, 12, 3, 10, 0)) == ""
    assert closed_reason(c, at(2026, 12, 4, 10, 0)) == "ended at 2026-12-04 10:00 CET"


def test_hours_are_stored_in_one_form_and_errors_name_their_place():
    assert hours.normalize({"sat": [["10:00", "13:00"]], "mon": [["13:00", "17:00"], ["9:00", "12:00"]]}) == {
        "mon": [["09:00", "12:00"], ["13:00", "17:00"]], "sat": [["10:00", "13:00"]]}
    assert hours.normalize({"mon": [["22:00", "24:00"]], "sun": []}) == {"mon": [["22:00", "24:00"]]}
    with pytest.raises(ValidationError) as caught:
        hours.normalize({"monday": [["09:00", "17:00"]], "tue": [["09:00", "25:00"]], "wed": [["17:00", "09:00"]],
                         "thu": [["09:00", "13:00"], ["12:00", "17:00"]], "fri": ["09:00-17:00"], "sat": "all day"})
    assert caught.value.messages == [
        "'monday' is not a day; use mon, tue, wed, thu, fri, sat, sun",
        "tue, window 1: '25:00' is not a time (HH:MM, 00:00 to 24:00)",
        ("wed, window 1: it must end after it starts (17:00-09:00); a window cannot run past midnight, split it "
         "over two days"),
        "thu: the windows 09:00-13:00 and 12:00-17:00 overlap",
        "fri, window 1: a window is [start, end], such as [\"09:00\", \"17:00\"], not '09:00-17:00'",
        'sat: a list of [start, end] windows, such as [["09:00", "17:00"]]',
    ]
    with pytest.raises(ValidationError, match="no calling window on any day"):
        hours.normalize({"sun": []})
    with pytest.raises(ValidationError, match="an object of days"):
        hours.normalize([["09:00", "17:00"]])
    assert hours.describe(OFFICE) == "Mon-Tue 09:00-17:00; Wed 09:00-12:00, 13:00-18:00; Thu-Fri 09:00-17:00; " \
                                     "Sat 10:00-13:00"
