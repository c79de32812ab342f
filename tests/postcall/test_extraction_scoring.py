"""Deterministic reading of calls: contact fields, intents, scoring rules, analytics."""

import pytest
from django.core.exceptions import ValidationError

from postcall import extraction, scoring
from postcall.analytics import call_analytics, percentile
from postcall.models import LeadScoringRules
from tests.postcall.conftest import BOOKING_SCENARIOS, store_call


def test_contact_fields_are_read_from_what_the_caller_said():
    text = "Hi, this is john smith, call me back on +1 (415) 555-0123 or mail John.Smith@Example.com. On 2026-11-25."
    assert extraction.find_phone(text) == "+14155550123"
    assert extraction.find_email(text) == "john.smith@example.com"
    assert extraction.find_name(text) == "John Smith"
    assert extraction.find_phone("Can I come on 2026-11-25 at 10?") is None  # a date is not a phone number
    assert extraction.find_name("I'm calling about my teeth") is None


@pytest.mark.parametrize("text, intent", [
    ("How much is a cleaning?", "pricing"),
    ("I'd like to book an appointment", "booking"),
    ("I need to cancel tomorrow", "cancellation"),
    ("What are your opening hours?", "support"),
    ("Nice weather", None),
])
def test_keyword_intents(text, intent):
    assert extraction.keyword_intent(text) == intent


def test_default_rules_score_price_booking_and_phone():
    caller = "How much does it cost? I want to book. My number is 0151 2345678."
    result = scoring.score(caller, {"gave_phone"})
    assert [r["signal"] for r in result.reasons] == ["asked_price", "asked_booking", "gave_phone"]
    assert result.points == 10 + 20 + 15
    assert result.tier == "hot"
    assert scoring.score("hello", set()).tier == "cold"


def test_bot_rules_and_thresholds_apply(bot_a):
    LeadScoringRules.objects.create(bot=bot_a, rules=[{"signal": "emergency", "points": 50, "keywords": ["pain"]}],
                                    hot_threshold=60, warm_threshold=30)
    rules, hot, warm = scoring.rules_for_bot(bot_a)
    result = scoring.score("I am in a lot of pain", set(), rules, hot, warm)
    assert (result.points, result.tier) == (50, "warm")


def test_bad_scoring_rules_are_rejected_with_the_place_named(bot_a):
    rules = LeadScoringRules(bot=bot_a, rules=[{"signal": "asked_price", "points": "ten", "keywords": ["price"]},
                                               {"signal": "mystery", "points": 5}])
    with pytest.raises(ValidationError) as info:
        rules.full_clean()
    text = str(info.value)
    assert "rules[0].points" in text and "'mystery' is not a built-in signal" in text
    with pytest.raises(ValidationError, match="warm threshold"):
        LeadScoringRules(bot=bot_a, hot_threshold=10, warm_threshold=20).full_clean()


def test_scenario_fields_come_first_and_each_value_keeps_its_source(bot_a):
    bot_a.scenarios = BOOKING_SCENARIOS
    bot_a.save()
    call = store_call(bot_a)
    result = extraction.extract(call, list(call.turns.all()))
    assert result.fields["phone"] == {"value": "+4915123456789", "source": "scenario"}
    assert result.fields["service"]["source"] == "scenario"
    assert result.fields["name"] == {"value": "Maria Lopez", "source": "transcript"}
    assert (result.intent, result.intent_source) == ("booking", "scenario")
    assert result.booking == {"scenario": "booking", "service": "cleaning", "date": "next tuesday",
                              "phone": "+4915123456789"}


def test_no_booking_when_a_required_field_is_missing(bot_a):
    bot_a.scenarios = BOOKING_SCENARIOS
    bot_a.save()
    call = store_call(bot_a, collected={"service": "cleaning"}, turns=[("caller", "I want to book", None, False)])
    result = extraction.extract(call, list(call.turns.all()))
    assert result.booking is None
    assert "phone" not in result.fields


def test_analytics_of_a_call(bot_a):
    call = store_call(bot_a)
    figures = call_analytics(call, list(call.turns.all()))
    assert figures["duration_sec"] == 95.0
    assert (figures["turns"], figures["caller_turns"], figures["bot_turns"]) == (9, 4, 5)
    assert figures["interruptions"] == 1
    assert figures["latency_samples"] == 4
    assert figures["latency_median_ms"] == 1200
    assert figures["latency_p95_ms"] == round(percentile([900, 1100, 1300, 2000], 0.95))
    assert percentile([], 0.5) is None
