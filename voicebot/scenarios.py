"""Validation of a bot's scenario configuration.

Staff write scenarios as YAML (or JSON) in admin; the bot stores the parsed,
validated list. ``parse_scenarios`` accepts either a list of scenarios or a
full document in the shape of DESIGN.md (a mapping with a ``scenarios`` key and
optionally ``greeting``, ``fallback``, ``max_turns``, ``silence_timeout_sec``)
and raises ``ScenarioError`` naming the exact place of each problem, e.g.
``scenarios[0].collect_fields[2].type: 'phon' is not one of ...``.
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
}
FIELD_KEYS = {"name", "prompt", "type", "required", "options", "choices", "hint"}
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
    if not scenario["trigger_keywords"] and not examples:
        errors.append(f"{where}: needs trigger_keywords or example_phrases, or callers can never reach it")
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
    return scenario


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
