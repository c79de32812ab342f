"""Loading and validating an evaluation suite (YAML). Every error names its place.

    name: salon                      # optional, shown in the report
    today: 2026-03-10                # the fixed "today" relative dates are read against (text mode)
    company: {name: Elegant Beauty Salon, timezone: America/New_York, country: US}
    bot:                             # the throwaway bot's settings ... or `bot: SLUG` (an existing bot)
      greeting: "Hello! ..."
      prompt: "You are ..."          # the system prompt
      fallback: "Sorry, ..."
      answer_style: automatic        # automatic | extractive | generative
      temperature: 0                 # also: max_tokens, max_turns, silence_timeout_sec, transfer_number,
      scenarios: [...]               #   knowledge_top_k, knowledge_score_threshold, llm_model, voice, ...
    documents: [docs/price-list.md]  # relative to the suite file
    dont_know: ["ask at the desk"]   # optional: more phrases that count as an honest don't-know
    questions:
      - {ask: "How much is a gel manicure?", facts: ["35", "gel"]}
      - {ask: "what do nails with gel cost me", facts: [["35", "thirty-five"]], paraphrase: true}
      - {ask: "Do you do tattoos?", absent: true}
    bookings:
      - turns: ["um hi I'd like to book a pedicure", "tomorrow", "at four", "sure, 202 555 0111", "yes"]
        expect: {service: pedicure, date: "+1d", time: "16:00", phone: "+12025550111"}
    rules:
      - {turns: ["thanks, bye"], expect_end: goodbye}
      - {turns: [{silence: true}, {silence: true}], expect_end: silence, bot: {silence_timeout_sec: 3}}

A fact given as a list is a set of alternatives (any one of them counts). Expected
dates: ``+Nd`` (N days after today), ``today``, ``tomorrow``, a weekday (``friday``:
the next one, today included; ``next friday``: the first after today) or an ISO date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

TOP_KEYS = {"name", "today", "company", "bot", "documents", "dont_know", "questions", "bookings", "rules"}
COMPANY_KEYS = {"name", "timezone", "country"}
# Suite key -> Bot model field.
BOT_KEYS = {
    "name": "name", "greeting": "greeting", "prompt": "system_prompt", "fallback": "fallback_phrase",
    "answer_style": "answer_style", "scenarios": "scenarios", "temperature": "temperature",
    "max_tokens": "max_tokens", "max_turns": "max_turns", "silence_timeout_sec": "silence_timeout_sec",
    "transfer_number": "transfer_number", "knowledge_top_k": "knowledge_top_k",
    "knowledge_score_threshold": "knowledge_score_threshold", "llm_model": "llm_model", "voice": "voice",
    "stt_model": "stt_model", "language": "language", "use_knowledge": "use_knowledge",
}
QUESTION_KEYS = {"ask", "facts", "absent", "paraphrase", "note"}
BOOKING_KEYS = {"turns", "expect", "scenario", "note"}
RULE_KEYS = {"turns", "expect_end", "bot", "note"}
# What a rule case may change on the bot for itself (e.g. a short silence timeout).
RULE_BOT_KEYS = {"max_turns": int, "silence_timeout_sec": (int, float), "transfer_number": str}
END_REASONS = ("goodbye", "transfer", "max_turns", "silence", "none")
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
RELATIVE_RE = re.compile(r"^([+-])(\d+)d$")


class _Loader(yaml.SafeLoader):
    """YAML without timestamps: dates stay text, so a bad one is reported by its place, not by PyYAML."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class SuiteError(ValueError):
    """The suite file is invalid; ``errors`` lists every problem, each naming its place."""

    def __init__(self, errors: list[str], path: str | Path | None = None):
        self.errors = errors
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(errors))


SILENCE = None  # a turn of silence (the caller says nothing for the bot's silence timeout)


@dataclass
class Question:
    index: int
    ask: str
    facts: list[list[str]] = field(default_factory=list)  # each: alternatives, one must be stated
    absent: bool = False
    paraphrase: bool = False
    note: str = ""

    @property
    def place(self) -> str:
        return f"questions[{self.index}]"


@dataclass
class Booking:
    index: int
    turns: list[str]
    expect: dict[str, str]  # values as given (dates resolved per run, against that run's today)
    scenario: str = ""
    note: str = ""

    @property
    def place(self) -> str:
        return f"bookings[{self.index}]"


@dataclass
class RuleCase:
    index: int
    turns: list[str | None]  # None: a silence
    expect_end: str
    bot: dict = field(default_factory=dict)
    note: str = ""

    @property
    def place(self) -> str:
        return f"rules[{self.index}]"


@dataclass
class Suite:
    path: Path
    name: str
    today: date | None
    company: dict
    bot: dict  # suite keys (see BOT_KEYS); empty when bot_slug is set
    bot_slug: str
    documents: list[Path]
    dont_know: list[str]
    questions: list[Question]
    bookings: list[Booking]
    rules: list[RuleCase]

    def bot_fields(self) -> dict:
        """The throwaway bot's model fields from the suite's ``bot:`` settings."""
        return {BOT_KEYS[k]: v for k, v in self.bot.items()}


def resolve_date(value: str, today: date) -> str:
    """An expected date in the suite ("+1d", "tomorrow", "friday", "next friday", ISO) as ISO."""
    text = value.strip().lower()
    if m := RELATIVE_RE.match(text):
        days = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
        return (today + timedelta(days=days)).isoformat()
    if text == "today":
        return today.isoformat()
    if text == "tomorrow":
        return (today + timedelta(days=1)).isoformat()
    after = text.startswith("next ")
    day = text[5:] if after else text
    if day in WEEKDAYS:
        ahead = (WEEKDAYS.index(day) - today.weekday()) % 7
        if after and ahead == 0:
            ahead = 7
        return (today + timedelta(days=ahead)).isoformat()
    return date.fromisoformat(value.strip()).isoformat()


def is_date_expression(value: str) -> bool:
    try:
        resolve_date(value, date(2000, 1, 1))
    except ValueError:
        return False
    return True


def looks_like_date_expression(value: str) -> bool:
    text = value.strip().lower()
    return bool(re.match(r"^[+-]\d+[a-z]+$", text) or text in ("today", "tomorrow")
                or text.removeprefix("next ") in WEEKDAYS or re.match(r"^\d{4}-\d{1,2}-\d{1,2}$", text))


# --- validation helpers ------------------------------------------------------------

def _unknown(data: dict, allowed: set, where: str, errors: list[str]) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        errors.append(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _text(value: Any, where: str, errors: list[str], *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        errors.append(f"{where}: expected a non-empty text" + (f", got {value!r}" if value is not None else ""))
        return ""
    return value


def _bool(value: Any, where: str, errors: list[str]) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        errors.append(f"{where}: expected true or false, got {value!r}")
        return False
    return value


def _list(value: Any, where: str, errors: list[str]) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(f"{where}: expected a list, got {type(value).__name__} {value!r}"[:200])
        return []
    return value


def _mapping(value: Any, where: str, errors: list[str]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(f"{where}: expected a mapping (key: value), got {type(value).__name__}")
        return {}
    return value


def _fact(value: Any, where: str, errors: list[str]) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        errors.append(f"{where}: expected a fact (a text or a number), got {value!r}")
        return ""
    return str(value).strip()


# --- sections ------------------------------------------------------------------------

def _company(raw: Any, errors: list[str]) -> dict:
    before = len(errors)
    data = _mapping(raw, "company", errors)
    _unknown(data, COMPANY_KEYS, "company", errors)
    company = {"name": _text(data.get("name", "Evaluation company"), "company.name", errors),
               "timezone": _text(data.get("timezone", "UTC"), "company.timezone", errors),
               "country": _text(data.get("country", "US"), "company.country", errors)}
    if len(errors) > before:
        return company
    from django.core.exceptions import ValidationError

    from voicebot.models import Company

    try:
        Company(slug="eval-check", **company).full_clean(validate_unique=False)
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            for message in messages:
                errors.append(f"company.{key}: {message}")
    return company


def _bot(raw: Any, errors: list[str]) -> tuple[dict, str]:
    if raw is None:
        return {}, ""
    if isinstance(raw, str):
        if not raw.strip():
            errors.append("bot: expected an existing bot's slug or a mapping of bot settings")
        return {}, raw.strip()
    data = _mapping(raw, "bot", errors)
    _unknown(data, set(BOT_KEYS), "bot", errors)
    settings = {k: v for k, v in data.items() if k in BOT_KEYS}
    if not settings:
        return settings, ""
    from django.core.exceptions import ValidationError

    from voicebot.models import Bot, Company

    fields = {BOT_KEYS[k]: v for k, v in settings.items()}
    fields.setdefault("name", "Evaluation bot")
    reverse = {v: k for k, v in BOT_KEYS.items()}
    try:
        bot = Bot(company=Company(name="check", slug="eval-check"), slug="eval-check", **fields)
    except (TypeError, ValueError) as exc:
        errors.append(f"bot: {exc}")
        return settings, ""
    try:
        bot.full_clean(exclude=["company"], validate_unique=False)
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            for message in messages:
                # Scenario errors already name their place ("scenarios[0].collect_fields[2]...").
                if key == "scenarios" and message.startswith("scenarios"):
                    errors.append(f"bot.{message}")
                else:
                    errors.append(f"bot.{reverse.get(key, key)}: {message}")
    else:
        settings["scenarios"] = bot.scenarios  # normalised by the scenario validator
    return settings, ""


def _documents(raw: Any, base: Path, errors: list[str]) -> list[Path]:
    paths = []
    for i, item in enumerate(_list(raw, "documents", errors)):
        name = _text(item, f"documents[{i}]", errors)
        if not name:
            continue
        path = (base / name).resolve()
        if not path.is_file():
            errors.append(f"documents[{i}]: no such file {name} (relative to {base})")
            continue
        paths.append(path)
    return paths


def _questions(raw: Any, errors: list[str]) -> list[Question]:
    questions = []
    for i, item in enumerate(_list(raw, "questions", errors)):
        where = f"questions[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: expected a mapping like {{ask: ..., facts: [...]}}, got {item!r}"[:200])
            continue
        _unknown(item, QUESTION_KEYS, where, errors)
        ask = _text(item.get("ask"), f"{where}.ask", errors)
        absent = _bool(item.get("absent"), f"{where}.absent", errors)
        paraphrase = _bool(item.get("paraphrase"), f"{where}.paraphrase", errors)
        note = _text(item.get("note"), f"{where}.note", errors, required=False)
        facts: list[list[str]] = []
        if "facts" in item:
            raw_facts = item["facts"]
            if not isinstance(raw_facts, list):
                errors.append(f"{where}.facts: expected a list, got {type(raw_facts).__name__} {raw_facts!r}"[:200])
            else:
                for j, fact in enumerate(raw_facts):
                    if isinstance(fact, list):
                        options = [_fact(f, f"{where}.facts[{j}][{k}]", errors) for k, f in enumerate(fact)]
                        if not fact:
                            errors.append(f"{where}.facts[{j}]: an empty list of alternatives")
                        facts.append([o for o in options if o])
                    else:
                        text = _fact(fact, f"{where}.facts[{j}]", errors)
                        facts.append([text] if text else [])
        if absent and facts:
            errors.append(f"{where}: an absent answer has no facts; remove facts or absent")
        elif not absent and not facts and "facts" not in item:
            errors.append(f"{where}: give the facts the answer must state (facts: [...]) or absent: true")
        elif not absent and not facts and isinstance(item["facts"], list):
            errors.append(f"{where}.facts: empty; list at least one fact, or say absent: true")
        questions.append(Question(i, ask, facts, absent, paraphrase, note))
    return questions


def _turns(raw: Any, where: str, errors: list[str], *, silence_ok: bool) -> list[str | None]:
    if raw is None:
        errors.append(f"{where}: missing; the caller's turns, e.g. turns: [\"I'd like to book\", \"tomorrow\"]")
        return []
    turns: list[str | None] = []
    for j, turn in enumerate(_list(raw, where, errors)):
        if isinstance(turn, dict) and silence_ok and set(turn) == {"silence"} and turn["silence"] is True:
            turns.append(SILENCE)
        elif isinstance(turn, str) and turn.strip():
            turns.append(turn)
        else:
            allowed = "a text" + (" or {silence: true}" if silence_ok else "")
            errors.append(f"{where}[{j}]: expected {allowed}, got {turn!r}")
    if isinstance(raw, list) and not raw:
        errors.append(f"{where}: empty; give at least one turn")
    return turns


def _bookings(raw: Any, errors: list[str]) -> list[Booking]:
    bookings = []
    for i, item in enumerate(_list(raw, "bookings", errors)):
        where = f"bookings[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: expected a mapping like {{turns: [...], expect: {{...}}}}")
            continue
        _unknown(item, BOOKING_KEYS, where, errors)
        turns = _turns(item.get("turns"), f"{where}.turns", errors, silence_ok=False)
        expect: dict[str, str] = {}
        raw_expect = item.get("expect")
        if raw_expect is None:
            errors.append(f"{where}.expect: missing; the fields the booking must end with")
        elif not isinstance(raw_expect, dict) or not raw_expect:
            errors.append(f"{where}.expect: expected a mapping of field: value, got {raw_expect!r}"[:200])
        else:
            for key, value in raw_expect.items():
                place = f"{where}.expect.{key}"
                if isinstance(value, date):
                    value = value.isoformat()
                if isinstance(value, bool) or not isinstance(value, str):
                    errors.append(f"{place}: expected a text in quotes, got {value!r} (YAML reads 16:00 as "
                                  "960 and +12025550111 as a number: write \"16:00\", \"+12025550111\")")
                    continue
                if looks_like_date_expression(value) and not is_date_expression(value):
                    errors.append(f"{place}: {value!r} is not a date (+Nd, today, tomorrow, a weekday or YYYY-MM-DD)")
                    continue
                expect[str(key)] = value
        scenario = _text(item.get("scenario"), f"{where}.scenario", errors, required=False)
        note = _text(item.get("note"), f"{where}.note", errors, required=False)
        bookings.append(Booking(i, [t for t in turns if t is not None], expect, scenario, note))
    return bookings


def _rules(raw: Any, errors: list[str]) -> list[RuleCase]:
    rules = []
    for i, item in enumerate(_list(raw, "rules", errors)):
        where = f"rules[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: expected a mapping like {{turns: [...], expect_end: goodbye}}")
            continue
        _unknown(item, RULE_KEYS, where, errors)
        turns = _turns(item.get("turns"), f"{where}.turns", errors, silence_ok=True)
        expect_end = item.get("expect_end")
        if expect_end is False:  # YAML reads a bare `none`... as a string; `no` as false
            expect_end = "none"
        if expect_end not in END_REASONS:
            errors.append(f"{where}.expect_end: {expect_end!r} is not one of {', '.join(END_REASONS)}")
            expect_end = "none"
        overrides = _mapping(item.get("bot"), f"{where}.bot", errors)
        _unknown(overrides, set(RULE_BOT_KEYS), f"{where}.bot", errors)
        for key, kind in RULE_BOT_KEYS.items():
            if key in overrides and (isinstance(overrides[key], bool) or not isinstance(overrides[key], kind)):
                errors.append(f"{where}.bot.{key}: expected {'a number' if kind is not str else 'a text'}, "
                              f"got {overrides[key]!r}")
        note = _text(item.get("note"), f"{where}.note", errors, required=False)
        rules.append(RuleCase(i, turns, expect_end, {k: v for k, v in overrides.items() if k in RULE_BOT_KEYS},
                              note))
    return rules


def parse_suite(data: Any, path: Path) -> Suite:
    """Validate parsed YAML; ``path`` is where documents are found relative to."""
    errors: list[str] = []
    if not isinstance(data, dict):
        raise SuiteError([(f"expected a mapping with {', '.join(sorted(TOP_KEYS))} at the top, "
                           f"got {type(data).__name__}")], path)
    _unknown(data, TOP_KEYS, "suite", errors)
    name = _text(data.get("name", path.parent.name or path.stem), "name", errors)
    today = data.get("today")
    if today is not None and not isinstance(today, date):
        try:
            today = date.fromisoformat(str(today))
        except ValueError:
            errors.append(f"today: expected a date YYYY-MM-DD, got {today!r}")
            today = None
    company = _company(data.get("company"), errors)
    bot, bot_slug = _bot(data.get("bot"), errors)
    documents = _documents(data.get("documents"), path.parent, errors)
    dont_know = [_text(p, f"dont_know[{i}]", errors) for i, p in enumerate(_list(data.get("dont_know"), "dont_know",
                                                                                  errors))]
    questions = _questions(data.get("questions"), errors)
    bookings = _bookings(data.get("bookings"), errors)
    rules = _rules(data.get("rules"), errors)
    if not (questions or bookings or rules) and not errors:
        errors.append("suite: no cases; add questions, bookings or rules")
    if errors:
        raise SuiteError(errors, path)
    return Suite(path=path, name=name, today=today, company=company, bot=bot, bot_slug=bot_slug,
                 documents=documents, dont_know=[p for p in dont_know if p], questions=questions,
                 bookings=bookings, rules=rules)


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file; raises ``SuiteError`` naming every problem's place."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError([f"no such file {path}"], path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except UnicodeDecodeError as exc:
        raise SuiteError([f"not UTF-8 text ({exc.reason} at byte {exc.start})"], path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SuiteError([f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"], path) from None
    return parse_suite(data, path.resolve())
