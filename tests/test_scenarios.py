import pytest

from voicebot.scenarios import ScenarioError, dump_text, parse_scenarios, validate_scenarios

DESIGN_EXAMPLE = """
greeting: "Hello! Elegant beauty salon. How can I help?"
scenarios:
  - name: booking
    trigger_keywords: [book, appointment, available]
    collect_fields:
      - {name: service, prompt: "Which service would you like?"}
      - {name: date, prompt: "Which day?"}
      - {name: time, prompt: "What time?"}
      - {name: phone, prompt: "Your phone number for the confirmation?"}
    on_complete: booking_created
  - name: support
    trigger_keywords: [question, price, how much]
    use_knowledge_base: true
fallback: "Sorry, I didn't catch that. Would you like to book, or do you have a question?"
max_turns: 20
silence_timeout_sec: 10
"""


def test_design_example_parses_with_its_bot_settings():
    scenarios, extras = parse_scenarios(DESIGN_EXAMPLE)
    assert [s["name"] for s in scenarios] == ["booking", "support"]
    booking = scenarios[0]
    assert [f["name"] for f in booking["collect_fields"]] == ["service", "date", "time", "phone"]
    assert booking["collect_fields"][0]["type"] == "text" and booking["collect_fields"][0]["required"] is True
    assert booking["on_complete"] == "booking_created"
    assert scenarios[1]["use_knowledge_base"] is True
    assert extras == {
        "greeting": "Hello! Elegant beauty salon. How can I help?",
        "fallback": "Sorry, I didn't catch that. Would you like to book, or do you have a question?",
        "max_turns": 20,
        "silence_timeout_sec": 10,
    }


def test_round_trip_through_yaml_is_stable():
    scenarios, _ = parse_scenarios(DESIGN_EXAMPLE)
    again, _ = parse_scenarios(dump_text(scenarios))
    assert again == scenarios


@pytest.mark.parametrize(
    "text, expected",
    [
        ("- name: Booking\n  trigger_keywords: [book]", "scenarios[0].name: required, lowercase"),
        ("- name: booking", "scenarios[0]: needs trigger_keywords or example_phrases"),
        (
            "- name: b\n  trigger_keywords: [x]\n  collect_fields:\n    - {name: p, prompt: 'Phone?', type: phon}",
            "scenarios[0].collect_fields[0].type: 'phon' is not one of text, phone, date, time, email, number, choice",
        ),
        (
            "- name: b\n  trigger_keywords: [x]\n  collect_fields:\n    - {name: c, prompt: 'Colour?', type: choice}",
            "scenarios[0].collect_fields[0].options: required for type choice",
        ),
        ("- name: b\n  trigger_keywords: [x]\n  collect_fields:\n    - {name: c}", "collect_fields[0].prompt: required"),
        ("- name: b\n  trigger_keywords: [x]\n  on_complete: 'Booking Created!'", "scenarios[0].on_complete"),
        ("- name: b\n  trigger_keywords: [x]\n- name: b\n  trigger_keywords: [y]", "scenarios[1].name: 'b' is used twice"),
        ("- name: b\n  trigger_keywords: [x]\n  colect_fields: []", "unknown key(s) colect_fields"),
        ("scenarios: [\n", "not valid YAML (line"),
        ("just text", "scenarios: must be a list"),
        ("max_turns: 0\nscenarios: []", "max_turns: must be a number from 1 to 500"),
    ],
)
def test_invalid_configs_name_the_place_of_the_error(text, expected):
    with pytest.raises(ScenarioError) as info:
        parse_scenarios(text)
    assert any(expected in error for error in info.value.errors), info.value.errors


def test_every_error_is_reported_at_once():
    text = "- name: A\n- name: b\n  trigger_keywords: [x]\n  collect_fields: [{name: p, prompt: '', type: zip}]"
    with pytest.raises(ScenarioError) as info:
        parse_scenarios(text)
    assert len(info.value.errors) >= 4


def test_choice_field_keeps_its_options():
    scenarios = validate_scenarios(
        [{"name": "pick", "example_phrases": ["I want a colour"],
          "collect_fields": [{"name": "colour", "prompt": "Which?", "type": "choice", "options": ["red", "blue"]}]}]
    )
    assert scenarios[0]["collect_fields"][0]["options"] == ["red", "blue"]
    assert scenarios[0]["trigger_keywords"] == []


def test_validate_scenarios_refuses_bot_settings_inside():
    with pytest.raises(ScenarioError, match="greeting: set it on the bot"):
        validate_scenarios({"greeting": "Hi", "scenarios": []})


def test_empty_text_is_no_scenarios():
    assert parse_scenarios("  ") == ([], {})
