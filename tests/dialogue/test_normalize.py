"""Normalising callers' answers: phone to E.164, dates in the company's time zone, times, e-mails."""

from datetime import date, datetime, timezone

import pytest

from pipelines.dialogue.normalize import (
    parse_choice,
    parse_date,
    parse_email,
    parse_number,
    parse_phone,
    parse_text,
    parse_time,
    today_in,
)

SUNDAY = date(2026, 11, 22)


@pytest.mark.parametrize("said, country, expected", [
    ("212 555 0123", "US", "+12125550123"),
    ("two one two, five five five, oh one two three", "US", "+12125550123"),
    ("my number is (212) 555-0123", "US", "+12125550123"),
    ("030 1234567", "DE", "+49301234567"),
    ("plus four nine three zero one two three four five six seven", "US", "+49301234567"),
    ("0044 20 7946 0958", "US", "+442079460958"),
    ("double two five double five five oh one two three", "US", "+12255550123"),
])
def test_phone_numbers_become_e164_in_the_company_country(said, country, expected):
    assert parse_phone(said, country=country).value == expected


@pytest.mark.parametrize("said", ["555", "my number is five five five", "call me maybe", "123 456 7890"])
def test_impossible_phone_numbers_are_refused(said):
    assert parse_phone(said, country="US") is None


@pytest.mark.parametrize("said, expected", [
    ("next Tuesday", "2026-11-24"),
    ("Friday", "2026-11-27"),
    ("this Sunday", "2026-11-22"),
    ("next Sunday", "2026-11-29"),
    ("tomorrow", "2026-11-23"),
    ("the day after tomorrow", "2026-11-24"),
    ("on the 28th", "2026-11-28"),
    ("the third", "2026-12-03"),
    ("December 3rd", "2026-12-03"),
    ("3 January", "2027-01-03"),
    ("11/28", "2026-11-28"),
    ("in two weeks", "2026-12-06"),
    ("2026-12-24", "2026-12-24"),
])
def test_dates_are_read_relative_to_today(said, expected):
    assert parse_date(said, today=SUNDAY, country="US").value == expected


def test_numeric_dates_follow_the_company_country():
    assert parse_date("3/12", today=SUNDAY, country="US").value == "2027-03-12"
    assert parse_date("3/12", today=SUNDAY, country="DE").value == "2026-12-03"


def test_past_dates_and_nonsense_are_refused():
    assert parse_date("2025-01-01", today=SUNDAY) is None
    assert parse_date("whenever suits", today=SUNDAY) is None


def test_today_is_the_company_time_zone_s_today():
    late_utc = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # still Sunday evening in New York
    assert today_in("America/New_York", late_utc) == date(2026, 11, 22)
    assert today_in("Europe/Berlin", late_utc) == date(2026, 11, 23)


@pytest.mark.parametrize("said, expected", [
    ("half past four", "16:30"),
    ("quarter to five", "16:45"),
    ("twenty past three", "15:20"),
    ("four thirty", "16:30"),
    ("at 10", "10:00"),
    ("ten in the morning", "10:00"),
    ("5pm", "17:00"),
    ("5 a.m.", "05:00"),
    ("16:30", "16:30"),
    ("noon", "12:00"),
    ("eleven o'clock", "11:00"),
    ("around 2 in the afternoon", "14:00"),
])
def test_times_use_the_business_hours_rule(said, expected):
    assert parse_time(said).value == expected


def test_times_that_are_not_times():
    assert parse_time("whenever you like") is None
    assert parse_time("25:99") is None


def test_emails_typed_or_spoken():
    assert parse_email("Anna.Smith@Example.com").value == "anna.smith@example.com"
    assert parse_email("my email is anna dot smith at example dot co dot uk").value == "anna.smith@example.co.uk"
    assert parse_email("no email") is None


def test_numbers_choices_and_text():
    assert parse_number("twenty five").value == 25
    assert parse_number("a hundred and two").value == 102
    assert parse_number("none") is None
    options = ["haircut", "manicure", "pedicure"]
    assert parse_choice("a pedicure please", options=options).value == "pedicure"
    assert parse_choice("the second one", options=options).value == "manicure"
    assert parse_choice("a massage", options=options) is None
    assert parse_text("Um, I'd like a manicure, please").value == "manicure"
    assert parse_text("and manicure, please.").value == "manicure"  # Whisper often hears a spoken "A" so


def test_spoken_compound_ordinals_and_times_inside_sentences():
    assert parse_date("the twenty eighth", today=SUNDAY).value == "2026-11-28"
    assert parse_date("December the thirty first", today=SUNDAY).value == "2026-12-31"
    from pipelines.dialogue.normalize import find_time

    assert find_time("November 5", strict=True) is None  # a day, not 5 pm
    assert find_time("Friday at 4", strict=True).strftime("%H:%M") == "16:00"
    assert find_time("can I come in Friday", strict=True) is None
