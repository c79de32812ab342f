"""Bookings that survive real callers: messy but ordinary booking calls through the real engine.

Every dialogue runs through ``DialogueEngine`` with the demo salon's scenarios (``seed_demo``),
the real bundled MiniLM embedder and a fixed clock (Sunday 22 November 2026, 10:00 in New
York), and asserts the fields the booking ends with, exactly: E.164 phones in the company's
country, ISO dates, HH:MM times, the canonical service. No LLM: every step is scripted.
"""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from pipelines.dialogue import normalize
from pipelines.dialogue.engine import DialogueEngine
from pipelines.dialogue.matcher import ScenarioMatcher
from voicebot.management.commands.seed_demo import DEMO_SCENARIOS
from voicebot.scenarios import ScenarioError, validate_scenarios

from .conftest import fixed_clock

SUNDAY = date(2026, 11, 22)
FALLBACK = "Sorry, I didn't catch that. Would you like to book, or do you have a question?"
SERVICES = ["haircut", "men's haircut", "kids haircut", "colour", "balayage", "manicure", "gel manicure", "pedicure",
            "facial", "massage", "eyebrow shaping", "lash lift"]
READ_OUT = ("We offer haircut, men's haircut, kids haircut, colour, balayage, manicure, gel manicure, pedicure, "
            "facial, massage, eyebrow shaping and lash lift. Which service would you like?")

# The salon's booking with a name asked too (free text), to show names and free-text rules.
NAMED_BOOKING = validate_scenarios([{
    "name": "booking", "trigger_keywords": ["book", "appointment"], "collect_fields": [
        {"name": "service", "prompt": "Which service would you like?",
         "choices": ["haircut", "manicure", {"value": "gel manicure", "also": ["gel nails", "shellac"]}, "pedicure",
                     "facial", "massage"]},
        {"name": "date", "prompt": "Which day?", "type": "date"},
        {"name": "time", "prompt": "What time?", "type": "time"},
        {"name": "name", "prompt": "What name should I put the booking under?"},
        {"name": "phone", "prompt": "Your phone number?", "type": "phone"},
    ]}])


def salon(scenarios=None) -> SimpleNamespace:
    return SimpleNamespace(scenarios=scenarios or validate_scenarios(DEMO_SCENARIOS), greeting="Hello!",
                           fallback_phrase=FALLBACK, max_turns=30, transfer_number="", company_country="US",
                           company_timezone="America/New_York", use_knowledge=False, tools=(), slug="salon")


def booking(service, day, at, phone, **more):
    return {"service": service, "date": day, "time": at, "phone": phone, **more}


# (turns, expected fields). A turn is what the caller says, or (what the caller says, a text the
# bot's reply must contain).
DIALOGUES = {
    # Reported: the service in the opening sentence was not taken, "tomorrow" became the service.
    "service_named_in_the_opening": (
        ["I want to book a pedicure", ("tomorrow", "What time?"), "at 3", "718 555 0142", "yes"],
        booking("pedicure", "2026-11-23", "15:00", "+17185550142")),
    # Reported: a phone number given to the service question was stored as the service.
    "phone_given_to_the_service_question": (
        ["I'd like to book an appointment",
         ("sure, 202 555 0111", "Thanks, I have your number. Which service would you like?"),
         ("a manicure", "Which day?"), "Friday", ("at 10", "Let me confirm"), "yes"],
        booking("manicure", "2026-11-27", "10:00", "+12025550111")),
    # Reported: a caller correcting themselves mid-number was refused.
    "corrected_mid_number": (
        ["book me in for a haircut Saturday at 11",
         ("double five five... sorry, it's 718 555 0142", "phone number +1 718-555-0142"), "yes"],
        booking("haircut", "2026-11-28", "11:00", "+17185550142")),
    # Reported: fillers in the opening; the haircut is taken too.
    "fillers_in_the_opening": (
        ["um hi, yeah, I'd like to come in for a haircut", ("uh, tomorrow", "What time?"), "at like four",
         "two one two five five five oh one two three", "yeah that's right"],
        booking("haircut", "2026-11-23", "16:00", "+12125550123")),
    "rambling_opening_with_a_service": (
        ["uh hello, um, yeah, so I was, like, wondering if I could come in for a pedicure", ("next Tuesday", "What time?"),
         "half past two", "718 555 0142", "yes"],
        booking("pedicure", "2026-11-24", "14:30", "+17185550142")),
    "misheard_gel_manicure_in_the_opening": (
        ["can I book a Joe manicure for Friday", ("half past two", "Your phone number"), "212 555 0123", "yes"],
        booking("gel manicure", "2026-11-27", "14:30", "+12125550123")),
    "misheard_pedicure_as_an_answer": (
        ["I need an appointment", ("petty cure", "Which day?"), "the day after tomorrow", "four thirty",
         "212 555 0123", "yes"],
        booking("pedicure", "2026-11-24", "16:30", "+12125550123")),
    "day_and_time_corrected_in_the_answer": (
        ["I'd like to book a facial", ("Friday, no, Saturday", "What time?"), "at four... sorry, five", "718 555 0142",
         ("yes", "noted")],
        booking("facial", "2026-11-28", "17:00", "+17185550142")),
    "everything_in_the_opening": (
        [("Hi, I'd like to book a men's haircut tomorrow at 10am, my number is 212 555 0123",
          "Sure. Let me confirm: service men's haircut, date Monday, November 23, time 10 AM"), "yes"],
        booking("men's haircut", "2026-11-23", "10:00", "+12125550123")),
    "a_service_not_offered_is_re_asked_with_the_list": (
        ["book an appointment", ("a tattoo", "Sorry, I didn't catch that. " + READ_OUT), "lash lift", "Thursday",
         "noon", "718 555 0142", "yes"],
        booking("lash lift", "2026-11-26", "12:00", "+17185550142")),
    "fillers_and_repeated_words": (
        ["so, um, I I want to, you know, book an appointment", "uh a a massage please", "next Tuesday", "um at at 2",
         "7 1 8, 5 5 5, 0 1 4 2", "yes"],
        booking("massage", "2026-11-24", "14:00", "+17185550142")),
    "date_and_time_given_to_the_service_question": (
        ["book", ("tomorrow at 3", "Thanks, I have the date and the time. Which service would you like?"),
         ("hair cut", "Your phone number"), "212 555 0123", "yes"],
        booking("haircut", "2026-11-23", "15:00", "+12125550123")),
    "fit_me_in_for_a_colour": (
        [("Can you fit me in for a colour on Thursday?", "What time?"), "noon", "(718) 555-0142", "yes"],
        booking("colour", "2026-11-26", "12:00", "+17185550142")),
    "plural_service_and_a_filler_time_in_the_opening": (
        [("I want to book, uh, two kids haircuts for Saturday at like 9", "Your phone number"), "718 555 0142", "yes"],
        booking("kids haircut", "2026-11-28", "09:00", "+17185550142")),
    "service_changed_at_the_confirmation": (
        ["I'd like to book a manicure", "Friday", "at 4", "212 555 0123",
         ("actually, make it a gel manicure", "Got it, service gel manicure. Let me confirm"), "yes"],
        booking("gel manicure", "2026-11-27", "16:00", "+12125550123")),
    "phone_given_to_the_time_question": (
        ["book a balayage on Monday", ("my number is 718 555 0142", "Thanks, I have your number. What time?"),
         ("quarter past eleven", "Let me confirm"), "yes"],
        booking("balayage", "2026-11-23", "11:15", "+17185550142")),
    "squeeze_me_in_for_eyebrows": (
        ["hey, um, could you squeeze me in for eyebrow shaping on Friday", "at 1", "212 555 0123", "yes"],
        booking("eyebrow shaping", "2026-11-27", "13:00", "+12125550123")),
    "service_corrected_in_the_answer": (
        ["I'd like to book an appointment", ("a haircut, no, sorry, a pedicure", "Which day?"), "tomorrow", "at 11",
         "212 555 0123", "yes"],
        booking("pedicure", "2026-11-23", "11:00", "+12125550123")),
    "last_digits_corrected": (
        ["book a facial tomorrow at 10", "718 555 01... sorry, 0142", "yes"],
        booking("facial", "2026-11-23", "10:00", "+17185550142")),
}

NAMED_DIALOGUES = {
    "name_and_everything_in_the_opening": (
        [("Hi, this is Anna Smith, I'd like to book a massage on Friday at 2", "Your phone number?"), "212 555 0123",
         ("yes", "noted")],
        booking("massage", "2026-11-27", "14:00", "+12125550123", name="Anna Smith")),
    "a_phone_number_is_no_name": (
        ["book a facial", "tomorrow at 10",
         ("sure, 212 555 0123", "Thanks, I have your number. What name should I put the booking under?"),
         ("uh, it's, um, Maria, you know, Maria Lopez", "Let me confirm"), "yes"],
        booking("facial", "2026-11-23", "10:00", "+12125550123", name="Maria Lopez")),
    "a_date_is_no_name": (
        ["I'd like to book shellac nails", ("Friday", "What time?"), "at 3", ("next Tuesday", "What name"),
         "Kim", "718 555 0142", "yes"],
        booking("gel manicure", "2026-11-27", "15:00", "+17185550142", name="Kim")),
}


def run_dialogue(engine: DialogueEngine, turns) -> list[str]:
    engine.start()
    replies = []
    for turn in turns:
        said, expected = (turn, None) if isinstance(turn, str) else turn
        reply = engine.handle(said)
        assert reply.scripted, (said, reply)
        if expected is not None:
            assert expected in reply.text, (said, reply.text)
        replies.append(reply.text)
    return replies


@pytest.mark.parametrize("name", list(DIALOGUES))
def test_messy_booking_dialogues_complete_with_exact_fields(name, embed):
    turns, expected = DIALOGUES[name]
    engine = DialogueEngine(salon(), embed=embed, clock=fixed_clock)
    run_dialogue(engine, turns)
    assert engine.completed == ["booking"]
    assert engine.collected == expected


@pytest.mark.parametrize("name", list(NAMED_DIALOGUES))
def test_bookings_with_a_name(name, embed):
    turns, expected = NAMED_DIALOGUES[name]
    engine = DialogueEngine(salon(NAMED_BOOKING), embed=embed, clock=fixed_clock)
    run_dialogue(engine, turns)
    assert engine.completed == ["booking"]
    assert engine.collected == expected


def test_a_value_given_later_than_asked_for_is_kept_and_only_that_field_asked_again(embed):
    engine = DialogueEngine(salon(), embed=embed, clock=fixed_clock)
    engine.start()
    engine.handle("I'd like to book an appointment")
    reply = engine.handle("tomorrow")
    assert reply.text == "Thanks, I have the date. Which service would you like?"
    assert engine.state()["field"] == "service" and engine.state()["values"] == {"date": "2026-11-23"}
    assert engine.handle("a pedicure at 4").text == "Your phone number for the confirmation?"  # the time came too
    assert engine.state()["values"] == {"service": "pedicure", "date": "2026-11-23", "time": "16:00"}


def test_a_question_about_a_service_is_not_taken_as_the_answer(embed):
    engine = DialogueEngine(salon(), embed=embed, clock=fixed_clock)
    engine.handle("book an appointment")
    reply = engine.handle("What does a manicure cost?")
    assert reply.text == "I'm sorry, I can't answer that right now. Which service would you like?"
    assert "service" not in engine.state()["values"]


def test_an_unknown_service_at_the_correction_step_reads_the_list(embed):
    engine = DialogueEngine(salon(), embed=embed, clock=fixed_clock)
    for said in ("book a haircut", "tomorrow", "at 10", "212 555 0123", "no"):
        engine.handle(said)
    assert engine.handle("the service is a tattoo").text == READ_OUT
    assert engine.handle("a pedicure").text.startswith("Got it, service pedicure. Let me confirm")


# --- choices ---------------------------------------------------------------------

DEMO_CHOICES = normalize.choices_of(validate_scenarios(DEMO_SCENARIOS)[0]["collect_fields"][0])


@pytest.mark.parametrize("said, expected", [
    ("Joe manicure", "gel manicure"),  # Whisper's "gel"
    ("a gel manicure please", "gel manicure"),
    ("petty cure", "pedicure"),
    ("pedi cure", "pedicure"),
    ("hair cut", "haircut"),
    ("a manicure please", "manicure"),  # not the gel one
    ("get a manicure", "manicure"),
    ("manicures", "manicure"),
    ("many cure", "manicure"),
    ("gel nails", "gel manicure"),  # a synonym
    ("shellac", "gel manicure"),
    ("a men's haircut", "men's haircut"),
    ("man's haircut", "men's haircut"),
    ("kid's hair cut", "kids haircut"),
    ("two kids haircuts", "kids haircut"),
    ("color", "colour"),
    ("eye brow shaping", "eyebrow shaping"),
    ("facials", "facial"),
    ("gel", "gel manicure"),  # a word of one choice only
    ("lash", "lash lift"),
    ("the second one", "men's haircut"),
])
def test_choices_are_matched_tolerantly(said, expected):
    assert normalize.find_choice(said, DEMO_CHOICES, partial=True).value == expected


@pytest.mark.parametrize("said", ["a tattoo", "leave a message", "can you call me back", "yes that's right",
                                  "perfect", "tomorrow", "Friday at four", "sure, 202 555 0111", "no idea"])
def test_what_is_no_choice_matches_none(said):
    assert normalize.find_choice(said, DEMO_CHOICES, partial=True) is None


def test_the_longest_choice_said_wins_and_sound_alike_words_share_a_key():
    assert normalize.find_choice("I want the gel manicure", DEMO_CHOICES).value == "gel manicure"
    assert normalize.metaphone("pettycure") == normalize.metaphone("pedicure") == "PTKR"
    assert normalize.metaphone("colour") == normalize.metaphone("color")
    assert normalize.word_similarity("joe", "gel") >= normalize.CHOICE_WORD_MIN > normalize.word_similarity("get", "gel")


def test_a_choice_field_reads_its_choices_when_nothing_matches():
    field = validate_scenarios(DEMO_SCENARIOS)[0]["collect_fields"][0]
    assert field["type"] == "choice"
    assert normalize.hint_for(field) + " " + field["prompt"] == READ_OUT
    assert normalize.parse_field(field, "a tattoo", today=SUNDAY, country="US") is None


# --- fillers, self-corrections, free text ------------------------------------------

@pytest.mark.parametrize("said, cleaned", [
    ("um hi, yeah, I'd like to come in for a haircut", "hi, yeah, I'd like to come in for a haircut"),
    ("I I want to, you know, book an appointment", "I want to, book an appointment"),
    ("uh a a massage please", "a massage please"),
    ("um at at 2", "at 2"),
    ("at like four", "at four"),
    ("I'd like, like, a manicure", "I'd like, a manicure"),
    ("I'd like to, I'd like to book", "I'd like to book"),
    ("I wa- I want a haircut", "I want a haircut"),
    ("five five five", "five five five"),  # numbers are never de-duplicated
    ("double five five", "double five five"),
    ("mm-hmm, yes", "mm-hmm, yes"),  # a yes, not a filler
])
def test_fillers_and_false_starts_are_dropped(said, cleaned):
    assert normalize.clean(said) == cleaned


@pytest.mark.parametrize("field, said, expected", [
    ({"type": "date"}, "Friday, no, Saturday", "2026-11-28"),
    ({"type": "date"}, "Saturday, not Friday", "2026-11-28"),
    ({"type": "date"}, "Friday... I mean Thursday", "2026-11-26"),
    ({"type": "time"}, "at four... sorry, five", "17:00"),
    ({"type": "time"}, "at 4, make that 4:30", "16:30"),
    ({"type": "phone"}, "double five five... sorry, it's 718 555 0142", "+17185550142"),
    ({"type": "phone"}, "718 555 01... sorry, 0142", "+17185550142"),
    ({"type": "phone"}, "two one two five five... sorry, five five five oh one two three", "+12125550123"),
    ({"type": "text"}, "Anna, sorry, Anne", "Anne"),
    ({"type": "text"}, "no idea", "no idea"),  # a bare "no" without a pause is not a correction
])
def test_in_an_answer_the_last_value_said_wins(field, said, expected):
    assert normalize.parse_field(field, said, today=SUNDAY, country="US").value == expected


def test_a_corrected_choice_keeps_the_last_one():
    field = {"type": "choice", "choices": SERVICES}
    assert normalize.parse_field(field, "a haircut, no, sorry, a pedicure", today=SUNDAY, country="US").value == \
        "pedicure"


@pytest.mark.parametrize("said", ["212 555 0123", "sure, 202 555 0111", "it's 718 555 0142, please", "tomorrow",
                                  "tomorrow at 4", "at 5pm", "Friday", "anna@example.com"])
def test_free_text_refuses_an_answer_that_is_only_a_number_date_or_time(said):
    assert normalize.parse_field({"type": "text"}, said, today=SUNDAY, country="US") is None


@pytest.mark.parametrize("said, expected", [("a blow-dry", "blow-dry"), ("Anna", "Anna"), ("Room 4", "Room 4"),
                                            ("um, a trim, you know", "trim")])
def test_free_text_keeps_real_answers(said, expected):
    assert normalize.parse_field({"type": "text"}, said, today=SUNDAY, country="US").value == expected


def test_values_said_in_passing_are_found_with_their_place():
    text = "Hi, this is Anna Smith, I'd like a facial tomorrow at 4, my number is 212 555 0123"
    phone, span = normalize.find_phone_span(text, country="US")
    assert phone.value == "+12125550123" and text[slice(*span)] == "212 555 0123"
    assert normalize.find_phone_span("at 4, 718 555 0142", country="US")[0].value == "+17185550142"
    assert normalize.find_name_span(text)[0] == "Anna Smith"
    assert normalize.find_name_span("It's Friday at 4") is None
    name_field = {"name": "name", "prompt": "?", "type": "text"}
    assert normalize.find_in_sentence(name_field, "my name is anna lopez", today=SUNDAY, country="US")[0].value == \
        "Anna Lopez"


# --- matching the request ---------------------------------------------------------

@pytest.fixture(scope="module")
def matcher(embed):
    return ScenarioMatcher(validate_scenarios(DEMO_SCENARIOS), embed=embed)


@pytest.mark.parametrize("said, how", [
    ("um hi, yeah, I'd like to come in for a haircut", "similarity"),
    # Only the last clause means it (the whole sentence scores below the threshold).
    ("uh, I'm new in town, my old salon closed last month, and I was hoping you could fit me in tomorrow",
     "similarity"),
    # Only without the fillers is it close enough.
    ("so um like I was um hoping you um could uh fit me in", "similarity"),
    # A service name with a booking verb.
    ("uh hello, um, yeah, so I was, like, wondering if I could come in for a pedicure", "choice"),
    ("hey, um, could you squeeze me in for a balayage", "choice"),
    ("I'd like a pedicure", "choice"),
])
def test_rambling_requests_start_the_booking(matcher, said, how):
    match = matcher.match(said)
    assert (match.scenario, match.how) == ("booking", how)


@pytest.mark.parametrize("said", ["do you sell gift cards?", "where are you located", "is there parking nearby",
                                  "hello", "what is the weather like", "I'd like to speak about my massage",
                                  "is the massage chair free"])
def test_what_is_no_booking_request_starts_none(matcher, said):
    match = matcher.match(said)
    assert match is None or match.scenario != "booking"


def test_a_price_question_naming_a_service_goes_to_its_keyword_scenario(matcher):
    assert matcher.match("how much is a haircut?").scenario == "support"


# --- the YAML of choices -------------------------------------------------------------

def test_choices_yaml_is_validated_and_stored_simply():
    scenarios = validate_scenarios("""
- name: booking
  trigger_keywords: [book]
  collect_fields:
    - name: service
      prompt: Which service would you like?
      choices: [haircut, manicure, {value: gel manicure, also: [gel nails, shellac]}]
""")
    field = scenarios[0]["collect_fields"][0]
    assert field["type"] == "choice"
    assert field["choices"] == ["haircut", "manicure", {"value": "gel manicure", "also": ["gel nails", "shellac"]}]
    assert normalize.choice_values(field) == ["haircut", "manicure", "gel manicure"]


@pytest.mark.parametrize("choices, expected", [
    ("haircut", "collect_fields[0].choices: must be a list of at least two choices"),
    ("[haircut, Haircut]", "collect_fields[0].choices[1]: 'Haircut' is listed twice"),
    ("[haircut, {name: x}]", "collect_fields[0].choices[1]: unknown key(s) name; allowed: also, value"),
    ("[haircut, {also: [x]}]", "collect_fields[0].choices[1].value: required"),
    ("[haircut, {value: gel, also: [haircut]}]", "collect_fields[0].choices[1].also[0]: 'haircut' is listed twice"),
    ("[haircut, [x]]", "collect_fields[0].choices[1]: a text, or a mapping"),
])
def test_bad_choices_name_their_place(choices, expected):
    text = f"- name: b\n  trigger_keywords: [x]\n  collect_fields:\n    - {{name: s, prompt: '?', choices: {choices}}}"
    with pytest.raises(ScenarioError) as info:
        validate_scenarios(text)
    assert any(f"scenarios[0].{expected}" in e for e in info.value.errors), info.value.errors


def test_choices_are_only_for_choice_or_text_fields_and_not_beside_options():
    base = "- name: b\n  trigger_keywords: [x]\n  collect_fields:\n    - {name: s, prompt: '?', "
    with pytest.raises(ScenarioError, match=r"collect_fields\[0\].choices: only for a text or choice field"):
        validate_scenarios(base + "type: phone, choices: [a, b]}")
    with pytest.raises(ScenarioError, match=r"collect_fields\[0\]: give either choices or options"):
        validate_scenarios(base + "type: choice, options: [a, b], choices: [a, b]}")


def test_the_demo_bot_offers_the_salon_services():
    field = validate_scenarios(DEMO_SCENARIOS)[0]["collect_fields"][0]
    assert normalize.choice_values(field) == SERVICES
