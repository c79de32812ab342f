"""Validation of a bot's scenario configuration.

Staff write scenarios as YAML (or JSON) in admin; the bot stores the parsed,
validated list. ``parse_scenarios`` accepts either a list of scenarios or a
full document in the shape of DESIGN.md (a mapping with a ``scenarios`` key and
optionally ``greeting``, ``fallback``, ``max_turns``, ``silence_timeout_sec``)
and raises ``ScenarioError`` naming the exact place of each problem, e.g.
``scenarios[0].collect_fields[2].type: 'phon' is not one of ...``.

Keypad input (DTMF): a field may say ``keypad: true`` (and ``keypad_timeout``), and a
scenario may be a keypad ``menu`` instead of collecting fields; see ``_validate_menu``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

FIELD_TYPES = ("text", "phone", "date", "time", "email", "number", "choice")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
EVENT_RE = re.compile(r"^[a-z][a-z0-9_.]*$")
TOP_LEVEL_KEYS = {"greeting", "scenarios", "fallback", "max_turns", "silence_timeout_sec"}
SCENARIO_KEYS = {
    "name",
    "description",
    "trigger_keywords",
    "example_phrases",
    "collect_fields",
    "on_complete",
    "use_knowledge_base",
    "confirm",
    "menu",
}
FIELD_KEYS = {"name", "prompt", "type", "required", "options", "choices", "hint", "keypad", "keypad_timeout"}
KEYPAD_TYPES = ("phone", "number", "text", "choice")  # what typed digits can be the answer to
KEYPAD_TIMEOUT_RANGE = (0.5, 30)
MENU_KEYS = {"prompt", "keys", "at_start", "keypad_timeout"}
MENU_OPTION_KEYS = {"scenario", "say", "transfer", "end"}
MENU_KEY_RE = re.compile(r"^[0-9]{1,4}$")
CHOICE_KEYS = {"value", "also"}


class ScenarioError(ValueError):
    """Invalid scenario configuration; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


def load_text(text: str) -> Any:
    """Parse YAML (a superset of JSON); an empty text is an empty list."""
    if not text or not text.strip():
        return []
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([f"not valid YAML{where}: {problem}"]) from None


def dump_text(scenarios: list[dict]) -> str:
    """The YAML shown to staff for a stored scenario list."""
    if not scenarios:
        return ""
    return yaml.safe_dump(scenarios, sort_keys=False, allow_unicode=True, width=100)


def parse_scenarios(value: Any) -> tuple[list[dict], dict]:
    """Validate scenarios given as text, a list, or a DESIGN-style document.

    Returns ``(scenarios, extras)``: the normalised scenario list and any
    top-level settings found beside it (greeting, fallback, max_turns,
    silence_timeout_sec) for the caller to apply to the bot.
    """
    if isinstance(value, str):
        value = load_text(value)
    if value is None:
        value = []
    extras: dict = {}
    errors: list[str] = []
    if isinstance(value, dict):
        unknown = sorted(set(value) - TOP_LEVEL_KEYS)
        if unknown:
            errors.append(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(TOP_LEVEL_KEYS))}")
        extras = _validate_extras(value, errors)
        value = value.get("scenarios", [])
    if not isinstance(value, list):
        raise ScenarioError(errors + ["scenarios: must be a list of scenarios"])
    scenarios = []
    seen: set[str] = set()
    for i, raw in enumerate(value):
        scenario = _validate_scenario(raw, f"scenarios[{i}]", errors)
        if scenario is None:
            continue
        if scenario["name"] in seen:
            errors.append(f"scenarios[{i}].name: '{scenario['name']}' is used twice")
        seen.add(scenario["name"])
        scenarios.append(scenario)
    _check_reachable(scenarios, errors)
    if errors:
        raise ScenarioError(errors)
    return scenarios, extras


def validate_scenarios(value: Any) -> list[dict]:
    """Like ``parse_scenarios`` but only a list of scenarios is accepted."""
    scenarios, extras = parse_scenarios(value)
    if extras:
        raise ScenarioError([f"{key}: set it on the bot, not inside scenarios" for key in extras])
    return scenarios


def _validate_extras(doc: dict, errors: list[str]) -> dict:
    extras = {}
    for key in ("greeting", "fallback"):
        if key in doc:
            if not isinstance(doc[key], str) or not doc[key].strip():
                errors.append(f"{key}: must be a non-empty text")
            else:
                extras[key] = doc[key].strip()
    for key, low, high in (("max_turns", 1, 500), ("silence_timeout_sec", 1, 300)):
        if key in doc:
            number = doc[key]
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not low <= number <= high:
                errors.append(f"{key}: must be a number from {low} to {high}")
            else:
                extras[key] = int(number) if key == "max_turns" else number
    return extras


def _text_list(raw: Any, where: str, errors: list[str]) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, (str, int, float)) and str(x).strip() for x in raw):
        errors.append(f"{where}: must be a list of non-empty texts")
        return []
    return [str(x).strip() for x in raw]


def _validate_scenario(raw: Any, where: str, errors: list[str]) -> dict | None:
    if not isinstance(raw, dict):
        errors.append(f"{where}: must be a mapping with at least 'name'")
        return None
    unknown = sorted(set(raw) - SCENARIO_KEYS)
    if unknown:
        errors.append(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(SCENARIO_KEYS))}")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        errors.append(f"{where}.name: required, lowercase letters, digits and _ (got {name!r})")
        name = str(name)
    scenario: dict[str, Any] = {"name": name}
    if raw.get("description"):
        scenario["description"] = str(raw["description"]).strip()
    scenario["trigger_keywords"] = [k.lower() for k in _text_list(raw.get("trigger_keywords"), f"{where}.trigger_keywords", errors)]
    examples = _text_list(raw.get("example_phrases"), f"{where}.example_phrases", errors)
    if examples:
        scenario["example_phrases"] = examples
    scenario["_where"] = where  # for the checks across scenarios (``_check_reachable``); removed there
    fields = raw.get("collect_fields") or []
    if not isinstance(fields, list):
        errors.append(f"{where}.collect_fields: must be a list of fields")
        fields = []
    scenario["collect_fields"] = []
    field_names: set[str] = set()
    for j, field in enumerate(fields):
        checked = _validate_field(field, f"{where}.collect_fields[{j}]", errors)
        if checked is None:
            continue
        if checked["name"] in field_names:
            errors.append(f"{where}.collect_fields[{j}].name: '{checked['name']}' is used twice")
        field_names.add(checked["name"])
        scenario["collect_fields"].append(checked)
    on_complete = raw.get("on_complete")
    if on_complete is not None:
        if not isinstance(on_complete, str) or not EVENT_RE.match(on_complete):
            errors.append(f"{where}.on_complete: an event name such as booking_created (got {on_complete!r})")
        else:
            scenario["on_complete"] = on_complete
    for flag in ("use_knowledge_base", "confirm"):
        if flag in raw:
            if not isinstance(raw[flag], bool):
                errors.append(f"{where}.{flag}: must be true or false")
            else:
                scenario[flag] = raw[flag]
    scenario.setdefault("use_knowledge_base", False)
    if "menu" in raw:
        if scenario["collect_fields"] or "on_complete" in scenario:
            errors.append(f"{where}.menu: a menu scenario offers keys; give it no collect_fields or on_complete")
        scenario["menu"] = _validate_menu(raw["menu"], f"{where}.menu", errors)
    return scenario


def _seconds(raw: Any, where: str, errors: list[str]) -> float | None:
    low, high = KEYPAD_TIMEOUT_RANGE
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not low <= raw <= high:
        errors.append(f"{where}: seconds from {low} to {high} (got {raw!r})")
        return None
    return raw


def _validate_menu(raw: Any, where: str, errors: list[str]) -> dict:
    """``menu: {prompt: "Press 1 to book, 2 for our hours", keys: {"1": {scenario: booking}, "2": {say: ...}}}``.

    A key is 1-4 digits (``#`` ends an entry, ``*`` clears it); each option does one of
    ``scenario: NAME`` (start it), ``transfer: true``, ``end: true``, or only ``say: TEXT``
    (the menu stays open); ``say`` beside another action is said instead of its usual line.
    ``at_start: true`` opens the menu from the greeting on (the greeting should read it out).
    """
    if not isinstance(raw, dict):
        errors.append(f"{where}: must be a mapping with prompt and keys")
        return {"prompt": "", "keys": {}}
    unknown = sorted(set(map(str, raw)) - MENU_KEYS)
    if unknown:
        errors.append(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(MENU_KEYS))}")
    menu: dict[str, Any] = {"prompt": ""}
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        errors.append(f"{where}.prompt: required, what the bot says, e.g. \"Press 1 to book, 2 for our hours\"")
    else:
        menu["prompt"] = prompt.strip()
    keys = raw.get("keys")
    menu["keys"] = {}
    if not isinstance(keys, dict) or not keys:
        errors.append(f"{where}.keys: required, a mapping from keys to options, e.g. {{\"1\": {{scenario: booking}}}}")
        keys = {}
    for key, option in keys.items():
        name = str(key)
        if isinstance(key, bool) or not MENU_KEY_RE.match(name):
            errors.append(f"{where}.keys: {key!r} is not a key; use digits 0-9 (up to 4), quoted, e.g. \"1\"")
            continue
        checked = _validate_option(option, f'{where}.keys["{name}"]', errors)
        if checked is not None:
            menu["keys"][name] = checked
    if "at_start" in raw:
        if not isinstance(raw["at_start"], bool):
            errors.append(f"{where}.at_start: must be true or false")
        else:
            menu["at_start"] = raw["at_start"]
    if "keypad_timeout" in raw:
        seconds = _seconds(raw["keypad_timeout"], f"{where}.keypad_timeout", errors)
        if seconds is not None:
            menu["keypad_timeout"] = seconds
    return menu


def _validate_option(raw: Any, where: str, errors: list[str]) -> dict | None:
    if not isinstance(raw, dict) or not raw:
        errors.append(f"{where}: a mapping such as {{scenario: booking}}, {{say: ...}}, {{transfer: true}}, {{end: true}}")
        return None
    unknown = sorted(set(map(str, raw)) - MENU_OPTION_KEYS)
    if unknown:
        errors.append(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(MENU_OPTION_KEYS))}")
    option: dict[str, Any] = {}
    if "say" in raw:
        if not isinstance(raw["say"], str) or not raw["say"].strip():
            errors.append(f"{where}.say: must be a non-empty text")
        else:
            option["say"] = raw["say"].strip()
    if "scenario" in raw:
        if not isinstance(raw["scenario"], str) or not NAME_RE.match(raw["scenario"]):
            errors.append(f"{where}.scenario: the name of a scenario (got {raw['scenario']!r})")
        else:
            option["scenario"] = raw["scenario"]
    for flag in ("transfer", "end"):
        if flag in raw:
            if raw[flag] is not True:
                errors.append(f"{where}.{flag}: must be true (leave it out otherwise)")
            else:
                option[flag] = True
    actions = [k for k in ("scenario", "transfer", "end") if k in raw]
    if len(actions) > 1:
        errors.append(f"{where}: give one of {', '.join(actions)}, not several")
    if not actions and "say" not in raw:
        errors.append(f"{where}: needs scenario, say, transfer or end")
    return option


def _check_reachable(scenarios: list[dict], errors: list[str]) -> None:
    """Checks across scenarios: each one can be reached, menu keys lead to scenarios that exist
    and do something, at most one menu is open from the start. Drops the ``_where`` marks."""
    by_name = {s["name"]: s for s in scenarios}
    where = {s["name"]: s.pop("_where") for s in scenarios}
    reached: set[str] = set()
    start_menu = ""
    for scenario in scenarios:
        menu = scenario.get("menu")
        if not menu:
            continue
        if menu.get("at_start"):
            reached.add(scenario["name"])
            if start_menu:
                errors.append(f"{where[scenario['name']]}.menu.at_start: only one menu can be open from the start "
                              f"('{start_menu}' is)")
            start_menu = start_menu or scenario["name"]
        for key, option in menu["keys"].items():
            target = option.get("scenario")
            if target is None:
                continue
            place = f'{where[scenario["name"]]}.menu.keys["{key}"].scenario'
            if target not in by_name:
                errors.append(f"{place}: '{target}' is not a scenario here (have: {', '.join(by_name)})")
                continue
            reached.add(target)
            goal = by_name[target]
            if not (goal.get("collect_fields") or goal.get("on_complete") or goal.get("menu")):
                errors.append(f"{place}: '{target}' collects no fields, fires nothing and is no menu, "
                              "so the key would do nothing")
    for scenario in scenarios:
        if not scenario["trigger_keywords"] and not scenario.get("example_phrases") \
                and scenario["name"] not in reached:
            errors.append(f"{where[scenario['name']]}: needs trigger_keywords or example_phrases (or a menu key "
                          "that leads to it), or callers can never reach it")


def _validate_field(raw: Any, where: str, errors: list[str]) -> dict | None:
    if not isinstance(raw, dict):
        errors.append(f"{where}: must be a mapping with 'name' and 'prompt'")
        return None
    unknown = sorted(set(raw) - FIELD_KEYS)
    if unknown:
        errors.append(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(FIELD_KEYS))}")
    name, prompt = raw.get("name"), raw.get("prompt")
    if not isinstance(name, str) or not NAME_RE.match(name):
        errors.append(f"{where}.name: required, lowercase letters, digits and _ (got {name!r})")
    if not isinstance(prompt, str) or not prompt.strip():
        errors.append(f"{where}.prompt: required, the question the bot asks")
    field_type = raw.get("type", "text")
    if field_type not in FIELD_TYPES:
        errors.append(f"{where}.type: {field_type!r} is not one of {', '.join(FIELD_TYPES)}")
    field: dict[str, Any] = {
        "name": str(name),
        "prompt": str(prompt or "").strip(),
        "type": field_type,
        "required": raw.get("required", True),
    }
    if not isinstance(field["required"], bool):
        errors.append(f"{where}.required: must be true or false")
    options = raw.get("options")
    if raw.get("choices") is not None:
        if options is not None:
            errors.append(f"{where}: give either choices or options, not both")
        if field_type not in ("text", "choice"):
            errors.append(f"{where}.choices: only for a text or choice field, not type {field_type}")
        field["type"] = "choice"
        field["choices"] = _validate_choices(raw["choices"], f"{where}.choices", errors)
    elif field_type == "choice":
        choices = _text_list(options, f"{where}.options", errors)
        if len(choices) < 2 and options is not None and isinstance(options, list):
            errors.append(f"{where}.options: a choice needs at least two options")
        elif options is None:
            errors.append(f"{where}.options: required for type choice (or give choices)")
        field["options"] = choices
    elif options is not None:
        errors.append(f"{where}.options: only for type choice")
    if raw.get("hint"):
        field["hint"] = str(raw["hint"]).strip()
    if "keypad" in raw:
        if not isinstance(raw["keypad"], bool):
            errors.append(f"{where}.keypad: must be true or false")
        elif raw["keypad"] and field["type"] not in KEYPAD_TYPES:
            errors.append(f"{where}.keypad: typed digits cannot answer a {field['type']} field "
                          f"(only {', '.join(KEYPAD_TYPES)})")
        elif raw["keypad"]:
            field["keypad"] = True
    if "keypad_timeout" in raw:
        if not raw.get("keypad"):
            errors.append(f"{where}.keypad_timeout: only with keypad: true")
        else:
            seconds = _seconds(raw["keypad_timeout"], f"{where}.keypad_timeout", errors)
            if seconds is not None:
                field["keypad_timeout"] = seconds
    return field


def _validate_choices(raw: Any, where: str, errors: list[str]) -> list:
    """``choices: [haircut, {value: gel manicure, also: [gel nails, shellac]}]``.

    Stored as given: a plain text for a choice without synonyms, else a mapping with
    ``value`` and ``also`` (a list). A value or synonym may appear once only.
    """
    if not isinstance(raw, list) or len(raw) < 2:
        errors.append(f"{where}: must be a list of at least two choices, e.g. [haircut, manicure]")
        return []
    out: list = []
    seen: dict[str, str] = {}

    def note(text: str, place: str) -> None:
        key = " ".join(text.lower().split())
        if key in seen:
            errors.append(f"{place}: {text!r} is listed twice (also at {seen[key]})")
        else:
            seen[key] = place

    for k, item in enumerate(raw):
        place = f"{where}[{k}]"
        if isinstance(item, (str, int, float)) and not isinstance(item, bool) and str(item).strip():
            value = str(item).strip()
            note(value, place)
            out.append(value)
            continue
        if not isinstance(item, dict):
            errors.append(f"{place}: a text, or a mapping like {{value: gel manicure, also: [gel nails]}}")
            continue
        unknown = sorted(set(item) - CHOICE_KEYS)
        if unknown:
            errors.append(f"{place}: unknown key(s) {', '.join(map(str, unknown))}; allowed: also, value")
        value = item.get("value")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value).strip():
            errors.append(f"{place}.value: required, the choice as it is stored and said back")
            continue
        value = str(value).strip()
        note(value, place)
        also = _text_list(item.get("also"), f"{place}.also", errors)
        for j, synonym in enumerate(also):
            note(synonym, f"{place}.also[{j}]")
        out.append({"value": value, "also": also} if also else value)
    return out
