"""Scenario YAML for keypad input (DTMF): ``keypad: true`` fields and keypad ``menu`` scenarios."""

import pytest

from voicebot.scenarios import ScenarioError, dump_text, parse_scenarios

MENU_YAML = """
- name: main_menu
  trigger_keywords: [menu, options]
  menu:
    at_start: true
    prompt: "Press 1 for a callback, 2 for our opening hours, 0 for a person."
    keys:
      1: {scenario: callback}
      "2": {say: "We are open 8 to 6, Monday to Friday."}
      "0": {transfer: true, say: "Putting you through."}
      "9": {end: true}
- name: callback
  collect_fields:
    - {name: phone, prompt: "Please type your phone number and press #.", type: phone, keypad: true,
       keypad_timeout: 5}
    - {name: topic, prompt: "Press 1 for sales, 2 for support.", type: choice, options: [sales, support],
       keypad: true}
"""


def test_a_keypad_menu_and_keypad_fields_parse_and_round_trip():
    scenarios, _ = parse_scenarios(MENU_YAML)
    menu, callback = scenarios
    assert menu["menu"] == {
        "prompt": "Press 1 for a callback, 2 for our opening hours, 0 for a person.",
        "keys": {"1": {"scenario": "callback"}, "2": {"say": "We are open 8 to 6, Monday to Friday."},
                 "0": {"say": "Putting you through.", "transfer": True}, "9": {"end": True}},
        "at_start": True,
    }
    phone, topic = callback["collect_fields"]
    assert (phone["keypad"], phone["keypad_timeout"], topic["keypad"]) == (True, 5, True)
    assert "_where" not in menu and "_where" not in callback
    # Reached only through the menu's key 1: no trigger words needed.
    assert callback["trigger_keywords"] == []
    again, _ = parse_scenarios(dump_text(scenarios))
    assert again == scenarios


FIELD = "- name: b\n  trigger_keywords: [x]\n  collect_fields:\n    - {name: f, prompt: 'Go?', %s}"
MENU = "- name: m\n  trigger_keywords: [menu]\n  menu: %s\n- name: booking\n  trigger_keywords: [book]\n" \
       "  collect_fields: [{name: day, prompt: 'Which day?', type: date}]\n- name: info\n  trigger_keywords: [info]"


@pytest.mark.parametrize("text, expected", [
    (FIELD % "type: date, keypad: true",
     "scenarios[0].collect_fields[0].keypad: typed digits cannot answer a date field (only phone, number, text, choice)"),
    (FIELD % "type: phone, keypad: yes please", "scenarios[0].collect_fields[0].keypad: must be true or false"),
    (FIELD % "type: phone, keypad_timeout: 4", "scenarios[0].collect_fields[0].keypad_timeout: only with keypad: true"),
    (FIELD % "type: phone, keypad: true, keypad_timeout: 90",
     "scenarios[0].collect_fields[0].keypad_timeout: seconds from 0.5 to 30 (got 90)"),
    (MENU % "{keys: {'1': {scenario: booking}}}", "scenarios[0].menu.prompt: required"),
    (MENU % "{prompt: Press 1}", "scenarios[0].menu.keys: required"),
    (MENU % "Press 1", "scenarios[0].menu: must be a mapping with prompt and keys"),
    (MENU % "{prompt: Press 1, keys: {'#': {say: hi}}}", "scenarios[0].menu.keys: '#' is not a key"),
    (MENU % "{prompt: Press 1, keys: {'1': {scenario: bookng}}}",
     'scenarios[0].menu.keys["1"].scenario: \'bookng\' is not a scenario here (have: m, booking, info)'),
    (MENU % "{prompt: Press 1, keys: {'1': {scenario: info}}}",
     'scenarios[0].menu.keys["1"].scenario: \'info\' collects no fields, fires nothing and is no menu'),
    (MENU % "{prompt: Press 1, keys: {'1': {scenario: booking, transfer: true}}}",
     'scenarios[0].menu.keys["1"]: give one of scenario, transfer, not several'),
    (MENU % "{prompt: Press 1, keys: {'1': {go: booking}}}", 'scenarios[0].menu.keys["1"]: unknown key(s) go'),
    (MENU % "{prompt: Press 1, keys: {'1': {transfer: false}}}",
     'scenarios[0].menu.keys["1"].transfer: must be true'),
    (MENU % "{prompt: Press 1, keys: {'1': 'booking'}}", 'scenarios[0].menu.keys["1"]: a mapping such as'),
    (MENU % "{prompt: Press 1, keys: {'1': {say: hi}}, at_start: maybe}", "scenarios[0].menu.at_start: must be true"),
    (MENU % "{prompt: Press 1, keys: {'1': {say: hi}}, repeat: 9}", "scenarios[0].menu: unknown key(s) repeat"),
    (("- name: m\n  trigger_keywords: [x]\n  menu: {prompt: P, keys: {'1': {say: hi}}}\n"
      "  collect_fields: [{name: f, prompt: 'F?'}]"),
     "scenarios[0].menu: a menu scenario offers keys; give it no collect_fields or on_complete"),
    (("- name: a\n  menu: {at_start: true, prompt: P, keys: {'1': {say: hi}}}\n"
      "- name: b\n  menu: {at_start: true, prompt: Q, keys: {'1': {say: ho}}}"),
     "scenarios[1].menu.at_start: only one menu can be open from the start ('a' is)"),
    ("- name: a\n  collect_fields: [{name: f, prompt: 'F?'}]",
     "scenarios[0]: needs trigger_keywords or example_phrases (or a menu key that leads to it)"),
])
def test_bad_keypad_yaml_names_the_place(text, expected):
    with pytest.raises(ScenarioError) as info:
        parse_scenarios(text)
    assert any(expected in error for error in info.value.errors), info.value.errors
