"""The dialogue engine: one conversation's scripted brain, shared by voice and text chat.

Pure Python (no Pipecat, no Django), so the call pipeline's ``ScenarioProcessor``
and the text ``ChatSession`` drive the same object: ``start()`` gives the
greeting, ``handle(text)`` takes one caller turn and returns a ``Reply``:

- a scripted reply (``use_llm`` False): said at once, no LLM involved;
- a request for the LLM (``use_llm`` True) with knowledge ``passages``, when no
  scenario is active and the knowledge base has something relevant;
- the fallback phrase when nothing fits;
- ``end_call`` / ``transfer_to`` for the built-in actions.

``handle_keys(digits)`` takes one keypad entry (DTMF, see ``keys.py``): the answer to a
field with ``keypad: true``, or a key of the open keypad ``menu``; otherwise ignored.

Per DESIGN: match the words to a scenario (keywords, then similarity to example
phrases); while a scenario is active ask its fields in order, parse and
normalise each answer (``normalize``), re-ask once with a hint, let the caller
correct an earlier field, confirm at the end, then fire ``on_complete``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable

from knowledge.excerpts import best_sentences
from pipelines.dialogue import answers, keys, normalize
from pipelines.dialogue.actions import ActionResult, ActionRunner
from pipelines.dialogue.matcher import Embed, ScenarioMatcher
from pipelines.dialogue.normalize import Parsed
from pipelines.dialogue.prompt import resolve_answer_style
from pipelines.frozen import thaw

logger = logging.getLogger(__name__)

Retrieve = Callable[[str], list[str]]

GOODBYE = "Thank you for calling. Goodbye!"
TURN_LIMIT = "We have reached the end of what I can do on this call. Thank you, goodbye!"
TRANSFERRING = "Let me put you through to a colleague. One moment, please."
NO_TRANSFER = "I'm sorry, I can't put you through right now, but I'm happy to help."
CANCELLED = "Okay, I've cancelled that. Is there anything else I can help with?"
DONE = "Thank you, that's all noted. Is there anything else I can help with?"
DONE_ACTION_FAILED = "Thank you, I've noted everything. A colleague will confirm it with you shortly."
MAX_FIELD_TRIES = 3
NO_SUCH_KEY = "Sorry, that key does nothing here."

YES_RE = re.compile(r"^\W*(yes|yeah|yep|yup|correct|right|that's right|that is right|sure|exactly|perfect|"
                    r"ok|okay|sounds good|confirm|confirmed|absolutely|great)\b", re.IGNORECASE)
NO_RE = re.compile(r"^\W*(no|nope|nah|not quite|wrong|that's wrong|incorrect)\b", re.IGNORECASE)
CANCEL_RE = re.compile(r"\b(cancel|never ?mind|forget it|stop that|start over)\b", re.IGNORECASE)
GOODBYE_RE = re.compile(r"\b(good ?bye|bye|that'?s all|that is all|nothing else|hang up)\b", re.IGNORECASE)
TRANSFER_RE = re.compile(
    r"\b((speak|talk) (to|with) (a |an |the |some |your )?(human|person|someone|somebody|real person|manager|agent|"
    r"operator|receptionist|staff|colleague|owner)|transfer me|put me through|"
    r"(can|could) i (get|have) (a |an )?(real )?(human|person|operator)\b(?! \w+ing)(?! hair))",
    re.IGNORECASE,
)
CORRECTION_RE = re.compile(r"\b(actually|change|instead|wrong|correction|make it|i meant|i mean|sorry|no,|not)\b",
                           re.IGNORECASE)
QUESTION_RE = re.compile(
    r"^\W*(what|when|where|which|who|why|how|do you|does|did you|are you|are there|is there|is it|is that|"
    r"can you tell|could you tell|will it|should i)\b", re.IGNORECASE)
ASKING_RE = re.compile(r"\?|^\W*(what|when|where|which|who|why|how|do|does|did|can|could|is|are|will|would|should|"
                       r"tell me|i'd like to know|i want to know|i was wondering)\b|\b(how much|price|cost)\b",
                       re.IGNORECASE)
# What a question about the business sounds like, though it names a booking word, and what a request sounds like.
POLICY_RE = re.compile(r"\b(cancel\w*|refund\w*|deposit|no[- ]?show|show up|late|miss(ed)?|money (back|down)|"
                       r"pay|paid|charge\w*|fees?|cost\w*|price\w*|how much|policy|minimum|how (old|early|long|far)|"
                       r"age|what happens|allowed|can (kids|children)|do i (have|need) to)\b", re.IGNORECASE)
INFO_QUESTION_RE = re.compile(r"^\W*(?:(?:um|uh|so|hi|hey|yo|ok|okay|well|and)\W+)*(what|when|where|which|who|why|"
                              r"how|till when|until when|is there|are there|is it|do you|does|can you tell)\b",
                              re.IGNORECASE)
BOOKING_REQUEST_RE = re.compile(r"\b(book|booking|schedule|reserve|appointment|"
                                r"fit me in|squeeze me in|come in|available|availability|slot|opening|"
                                r"(have|got) time|free (on|at|this|next|tomorrow))\b", re.IGNORECASE)
STILL_THERE = "Are you still there?"
SILENCE_GOODBYE = "I haven't heard from you, so I'll end the call now. Goodbye!"
VALUE_AFTER_RE = re.compile(r"\b(?:to|is|be|was|should be)\s+(.+)$", re.IGNORECASE)
# Which values are looked for first in a sentence: digits go to the phone before a time can take them.
FIND_ORDER = {"phone": 0, "email": 1, "date": 2, "time": 3, "choice": 4, "number": 5, "text": 6}
TYPE_WORDS = {
    "date": ("date", "day"),
    "time": ("time",),
    "phone": ("phone", "number"),
    "email": ("email", "e-mail", "mail"),
}


@dataclass
class Reply:
    text: str = ""
    kind: str = "script"  # greeting, script, action, knowledge, llm, fallback, end, transfer, ignored (keys)
    use_llm: bool = False
    passages: list[str] = field(default_factory=list)  # what the LLM is given
    documents: list[str] = field(default_factory=list)  # all that was found: what its reply is checked against
    evidence: str = ""  # the documents' own answer (extractive): the values an LLM reply may state
    end_call: bool = False
    end_reason: str = ""
    transfer_to: str = ""
    action: ActionResult | None = None
    then_say: str = ""  # said after the LLM's answer: the question a scenario was waiting on

    @property
    def scripted(self) -> bool:
        return not self.use_llm


@dataclass
class _Active:
    scenario: dict
    values: dict[str, Parsed] = field(default_factory=dict)
    awaiting: str = "field"  # field, confirm, correction
    failures: int = 0

    @property
    def fields(self) -> list[dict]:
        return list(self.scenario.get("collect_fields") or ())

    def next_field(self) -> dict | None:
        return next((f for f in self.fields if f["name"] not in self.values), None)


def passage_info(passage) -> dict:
    """A passage as the explanation shows it: its text, and the score and document a retriever gave it
    (``knowledge.Found`` carries them; a plain string has none)."""
    return {"text": str(passage), "score": getattr(passage, "score", None),
            "document": getattr(passage, "document", ""), "document_id": getattr(passage, "document_id", None)}


def _label(field_def: dict) -> str:
    label = field_def["name"].replace("_", " ")
    if field_def.get("type") == "phone" and "number" not in label:
        label += " number"
    return label


def _have(field_def: dict) -> str:
    """How a value taken early is acknowledged: "Thanks, I have your number."""
    kind = field_def.get("type", "text")
    if kind == "phone":
        return "your number"
    if kind == "email":
        return "your e-mail"
    if "name" in field_def["name"] and kind == "text":
        return "your name"
    return f"the {_label(field_def)}"


class DialogueEngine:
    """One conversation. ``config`` is a ``BotConfig`` (or anything with its attributes)."""

    def __init__(self, config, *, embed: Embed | None = None, retrieve: Retrieve | None = None,
                 actions: ActionRunner | None = None, clock: Callable[[], datetime] | None = None,
                 answer_style: str | None = None):
        self.config = config
        # "extractive" or "generative" (``prompt.resolve_answer_style`` decides "automatic").
        self.answer_style = answer_style or resolve_answer_style(config)
        self.scenarios = [thaw(s) for s in (config.scenarios or ())]
        self.matcher = ScenarioMatcher(self.scenarios, embed=embed)
        self.retrieve = retrieve
        self.actions = actions if actions is not None else ActionRunner(getattr(config, "tools", ()))
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.country = getattr(config, "company_country", "") or "US"
        self.timezone = getattr(config, "company_timezone", "") or "UTC"
        self._choice_names: list | None = None
        self.active: _Active | None = None
        self.collected: dict[str, Any] = {}
        self.last_scenario = ""
        self.completed: list[str] = []
        self.events: list[dict] = []
        self.user_turns = 0
        self.ended = False
        self.end_reason = ""
        self.silences = 0
        self.menu: dict | None = keys.start_menu(self.scenarios)  # the keypad menu open now (a scenario)
        # What the last reply was based on (``explain``): the scenario matched and how, the
        # passages found with their scores and documents, why a fallback was chosen.
        self.why: dict = {}

    # --- public API -------------------------------------------------------------

    def start(self) -> Reply:
        self.matcher.warm_up()
        return Reply(self.config.greeting or "", kind="greeting")

    def handle(self, text: str) -> Reply:
        """One caller turn in, one reply out. Scripted replies never need the LLM."""
        text = (text or "").strip()
        self.why = {}
        if self.ended:
            return Reply("", kind="end", end_call=True, end_reason=self.end_reason)
        self.user_turns += 1
        self.silences = 0
        if not text:
            return self._reprompt()
        if GOODBYE_RE.search(text) and not (self.active and self.active.awaiting == "field"
                                            and self.active.next_field() and self._parses_as_answer(text)):
            return self.end_call("goodbye", GOODBYE)
        if TRANSFER_RE.search(text):
            return self.transfer_call()
        if self.user_turns > self.config.max_turns:
            return self.end_call("max_turns", TURN_LIMIT)
        if self.active is not None:
            self.why["scenario"] = {"name": self.active.scenario["name"], "how": "active", "score": None}
            return self._in_scenario(text)
        if self.menu is not None and (key := keys.spoken_key(text, self.menu["menu"])) is not None:
            return self._menu_key(key)  # "two" to "press 2 for our hours"
        match = self.matcher.match(text)
        if match is not None:
            scenario = next(s for s in self.scenarios if s["name"] == match.scenario)
            self.why["scenario"] = {"name": match.scenario, "how": match.how, "score": round(match.score, 3)}
            if scenario.get("collect_fields") and self._asks_for_information(text):
                answer = self._off_script(text, use_knowledge=True)  # "what if I miss my appointment?"
                if answer.kind == "knowledge" or POLICY_RE.search(text) or INFO_QUESTION_RE.search(text):
                    self.why["scenario"]["not_started"] = "a question about the business: the documents were asked"
                    return answer  # a question the documents cannot answer: say so, don't start a booking
            logger.info("scenario %s matched by %s (%.2f)", match.scenario, match.how, match.score)
            return self._start(scenario, text)
        return self._off_script(text, use_knowledge=bool(getattr(self.config, "use_knowledge", False)))

    def handle_keys(self, digits: str) -> Reply:
        """One keypad entry (the digits pressed before ``#`` or the pause; ``*`` already applied).

        The answer to the field being asked if it takes ``keypad: true`` (normalised as its type,
        confirmed as usual), else a key of the open menu; anything else is ignored (kind
        ``ignored``, nothing to say), so stray tones from a phone system change nothing.
        """
        self.why = {}
        if self.ended:
            return Reply("", kind="end", end_call=True, end_reason=self.end_reason)
        field_def = self.keypad_field()
        if field_def is None and self.menu is None:
            return Reply("", kind="ignored")
        self.user_turns += 1
        self.silences = 0
        if self.user_turns > self.config.max_turns:
            return self.end_call("max_turns", TURN_LIMIT)
        if field_def is None:
            return self._menu_key(digits)
        parsed = keys.parse_keys(field_def, digits, country=self.country)
        if parsed is None and not digits and not field_def.get("required", True):
            parsed = normalize.Parsed(None, "not given")  # "#" alone skips an optional field
        if parsed is None:
            return self._on_bad_answer(field_def, typed=True)
        self.active.values[field_def["name"]] = parsed
        return self._ask_next()

    def keypad_field(self) -> dict | None:
        """The field being asked, if it takes keypad input."""
        active = self.active
        field_def = active.next_field() if active is not None and active.awaiting == "field" else None
        return field_def if field_def is not None and field_def.get("keypad") else None

    def accepts_keys(self) -> bool:
        """Whether a keypad entry would do anything now (a keypad field is asked, or a menu is open)."""
        return self.keypad_field() is not None or self.menu is not None

    def keypad_timeout(self) -> float:
        """Seconds without a key that end the entry being typed."""
        field_def = self.keypad_field()
        source = field_def if field_def is not None else (self.menu or {}).get("menu") or {}
        return float(source.get("keypad_timeout", keys.DEFAULT_TIMEOUT))

    def keys_complete(self, digits: str) -> bool:
        """Whether the entry so far can only be answered now (a menu key, a one-digit choice)."""
        field_def = self.keypad_field()
        if field_def is not None:
            return keys.complete(digits, field=field_def)
        return self.menu is not None and keys.complete(digits, menu=self.menu["menu"])

    def on_silence(self) -> Reply:
        """The caller said nothing for ``silence_timeout_sec``: re-prompt once, then say goodbye."""
        if self.ended:
            return Reply("", kind="end", end_call=True, end_reason=self.end_reason)
        self.silences += 1
        if self.silences > 1:
            return self.end_call("silence", SILENCE_GOODBYE)
        prompt = self._current_prompt()
        return Reply(f"{STILL_THERE} {prompt}".strip())

    def end_call(self, reason: str, text: str = GOODBYE) -> Reply:
        self.ended, self.end_reason = True, reason
        return Reply(text, kind="end", end_call=True, end_reason=reason)

    def transfer_call(self) -> Reply:
        number = getattr(self.config, "transfer_number", "")
        if not number:
            return Reply(NO_TRANSFER + " " + self._current_prompt(), kind="script")
        self.ended, self.end_reason = True, "transfer"
        return Reply(TRANSFERRING, kind="transfer", end_call=True, end_reason="transfer", transfer_to=number)

    def run_tool(self, name: str, arguments: dict) -> Reply:
        """A tool the LLM asked for (only with LLMs that call tools; never relied on)."""
        if name == "end_call":
            return self.end_call("bot_hangup", GOODBYE)
        if name == "transfer_call":
            return self.transfer_call()
        result = self.actions.call_tool(name, arguments, context=self._context())
        self.events.append({"tool": name, "arguments": arguments, "ok": result.ok})
        text = result.say or ("Done." if result.ok else self.config.fallback_phrase)
        return Reply(text, kind="action", action=result)

    def state(self) -> dict:
        """Where the conversation stands (shown on the admin chat page, returned by chat)."""
        active = self.active
        next_field = active.next_field() if active else None
        return {
            "scenario": active.scenario["name"] if active else None,
            "field": next_field["name"] if next_field and active.awaiting == "field" else None,
            "awaiting": active.awaiting if active else None,
            "values": {f["name"]: active.values[f["name"]].value for f in active.fields
                       if f["name"] in active.values} if active else {},
            "collected": dict(self.collected),
            "completed": list(self.completed),
            "menu": self.menu["name"] if self.menu else None,
            "turns": self.user_turns,
            "ended": self.ended,
            "end_reason": self.end_reason,
        }

    def record_fields(self) -> tuple[str, dict]:
        """(scenario, collected_fields) for the call record: completed values, then any in progress."""
        fields = dict(self.collected)
        if self.active:
            fields.update({k: v.value for k, v in self.active.values.items()})
        return self.last_scenario, fields

    def summary(self) -> dict:
        """What the engine did, for the call's metrics."""
        return {"completed": list(self.completed), "events": list(self.events),
                "actions": self.actions.log.as_list(), "turns": self.user_turns}

    # --- scenarios --------------------------------------------------------------

    @property
    def today(self) -> date:
        return normalize.today_in(self.timezone, self.clock())

    def _parse(self, field_def: dict, text: str) -> Parsed | None:
        return normalize.parse_field(field_def, text, today=self.today, country=self.country)

    def _parses_as_answer(self, text: str) -> bool:
        field_def = self.active.next_field() if self.active else None
        return bool(field_def and field_def.get("type", "text") != "text" and self._parse(field_def, text))

    def _start(self, scenario: dict, text: str, prefix: str | None = None) -> Reply:
        if scenario.get("menu"):  # a keypad menu: its prompt, and its keys work until a scenario starts
            self.menu = scenario
            return Reply((prefix or "") + scenario["menu"]["prompt"])
        self.menu = None  # a scenario under way closes the menu
        self.last_scenario = scenario["name"]
        if not scenario.get("collect_fields"):
            if scenario.get("on_complete"):
                return self._complete(_Active(scenario))
            return self._off_script(text, use_knowledge=scenario.get("use_knowledge_base", False)
                                    or bool(getattr(self.config, "use_knowledge", False)))
        self.active = _Active(scenario)
        self._prefill(text)
        return self._ask_next(prefix="Sure. " if prefix is None else prefix)

    def _prefill(self, text: str) -> None:
        """Take what the opening sentence already says: "I want to book a pedicure tomorrow at 4"."""
        found, _ = self._cross_fill(normalize.clean(text), skip=None)
        self.active.values.update(found)

    def _cross_fill(self, text: str, *, skip: dict | None) -> tuple[dict[str, Parsed], str]:
        """Values for fields not asked yet, said in passing ("Friday at four" answers the time too;
        "sure, 202 555 0111" to the service question gives the phone), and ``text`` without them.

        Each stretch of words serves one field. A field of the same type as the one being
        asked (``skip``) is left alone: the answer is for the question asked.
        """
        active = self.active
        skip_type = skip.get("type", "text") if skip else None
        todo = [f for f in active.fields if f["name"] not in active.values and f is not skip
                and (f.get("type", "text") != skip_type or skip_type == "text")]
        found: dict[str, Parsed] = {}
        rest = text
        for field_def in sorted(todo, key=lambda f: FIND_ORDER.get(f.get("type", "text"), len(FIND_ORDER))):
            hit = normalize.find_in_sentence(field_def, rest, today=self.today, country=self.country)
            if hit is None:
                continue
            parsed, (start, end) = hit
            found[field_def["name"]] = parsed
            rest = rest[:start] + " " * (end - start) + rest[end:]
        return found, rest

    def _ask_next(self, prefix: str = "") -> Reply:
        active = self.active
        field_def = active.next_field()
        active.failures = 0
        if field_def is not None:
            active.awaiting = "field"
            return Reply(prefix + field_def["prompt"])
        if self._needs_confirmation(active.scenario):
            active.awaiting = "confirm"
            return Reply(prefix + self._confirmation_text())
        return self._complete(active)

    def _needs_confirmation(self, scenario: dict) -> bool:
        tool = self.actions.tool(scenario.get("on_complete") or "")
        if tool is not None and tool.requires_confirmation:
            return True
        return scenario.get("confirm", True)

    def _confirmation_text(self) -> str:
        active = self.active
        parts = [f"{_label(f)} {active.values[f['name']].spoken}" for f in active.fields if f["name"] in active.values]
        return "Let me confirm: " + ", ".join(parts) + ". Is that right?"

    def _current_prompt(self) -> str:
        if self.active is None:
            return ""
        if self.active.awaiting == "confirm":
            return self._confirmation_text()
        field_def = self.active.next_field()
        return field_def["prompt"] if field_def else ""

    def _reprompt(self) -> Reply:
        if self.active is not None:
            return Reply("Sorry, I didn't hear anything. " + self._current_prompt())
        self.why["fallback"] = "nothing was said"
        return Reply(self.config.fallback_phrase, kind="fallback")

    def _in_scenario(self, text: str) -> Reply:
        active = self.active
        text = normalize.clean(text) or text  # "um", "you know", "I I want" ...
        if CANCEL_RE.search(text):
            self.active = None
            return Reply(CANCELLED)
        if active.awaiting == "confirm":
            return self._on_confirmation(text)
        if active.awaiting == "correction":
            corrected = self._correction(text, current=None)
            if corrected is None:
                named = next((f for f in active.fields if f.get("type") == "choice" and self._names(f, text)), None)
                if named is not None:  # "the service is a tattoo": say what there is
                    return Reply(f"{normalize.hint_for(named)} {named['prompt']}")
                names = ", ".join(_label(f) for f in active.fields)
                return Reply(f"Which detail should I change: {names}? Please say it with the new value.")
            return self._after_correction(*corrected)
        field_def = active.next_field()
        corrected = self._correction(text, current=field_def)
        if corrected is not None:
            return self._after_correction(*corrected)
        found, rest = self._cross_fill(text, skip=field_def)
        if not found:
            parsed = self._parse(field_def, text)
        elif field_def.get("type", "text") == "text" and not normalize.has_content(rest):
            parsed = None  # "sure, 212 555 0123" to the name question: a number, no name
        else:
            parsed = self._parse(field_def, rest)
        if QUESTION_RE.search(text) and (parsed is None or field_def.get("type", "text") in ("text", "choice")):
            return self._side_question(text, field_def)
        if parsed is not None:
            active.values[field_def["name"]] = parsed
            active.values.update(found)
            return self._ask_next()
        if found:  # an answer to another question: keep it, ask this one again
            active.values.update(found)
            have = " and ".join(_have(f) for f in active.fields if f["name"] in found)
            return self._ask_next(prefix=f"Thanks, I have {have}. ")
        return self._on_bad_answer(field_def)

    def _side_question(self, text: str, field_def: dict) -> Reply:
        """A question in the middle of a scenario: answered from knowledge, then the field is asked again."""
        use_knowledge = bool(getattr(self.config, "use_knowledge", False)
                             or self.active.scenario.get("use_knowledge_base"))
        answer = self._off_script(text, use_knowledge=use_knowledge)
        if answer.use_llm and answer.passages:
            answer.then_say = field_def["prompt"]
            return answer
        if answer.kind == "knowledge":  # an extractive answer: the documents' own words
            return Reply(f"{answer.text} {field_def['prompt']}", kind="knowledge", passages=answer.passages)
        return Reply(f"I'm sorry, I can't answer that right now. {field_def['prompt']}")

    def _on_bad_answer(self, field_def: dict, *, typed: bool = False) -> Reply:
        active = self.active
        active.failures += 1
        # How to say an answer is no help with typed digits: only the field's own hint is.
        hint = field_def.get("hint", "") if typed else normalize.hint_for(field_def)
        if active.failures == 1:
            if typed:
                return Reply(" ".join(filter(None, (f"Sorry, that isn't a valid {_label(field_def)}.", hint,
                                                    field_def["prompt"]))))
            if field_def.get("type") == "choice":  # read the choices out
                return Reply(f"Sorry, I didn't catch that. {hint} {field_def['prompt']}")
            return Reply(f"Sorry, that doesn't sound like a valid {_label(field_def)}. {hint} {field_def['prompt']}")
        if not field_def.get("required", True):
            active.values[field_def["name"]] = Parsed(None, "not given")
            return self._ask_next()
        if active.failures < MAX_FIELD_TRIES:
            return Reply(f"{hint} {field_def['prompt']}".strip())
        # Give up on the scenario rather than loop; what was collected stays on the record.
        self.collected.update({k: v.value for k, v in active.values.items()})
        self.active = None
        reply = f"I'm sorry, I couldn't get your {_label(field_def)}."
        self.why["fallback"] = f"no valid {_label(field_def)} after {MAX_FIELD_TRIES} tries: the scenario gave up"
        if getattr(self.config, "transfer_number", ""):
            return Reply(reply + " " + TRANSFERRING, kind="transfer", end_call=True, end_reason="transfer",
                         transfer_to=self.config.transfer_number)
        return Reply(reply + " " + self.config.fallback_phrase, kind="fallback")

    def _on_confirmation(self, text: str) -> Reply:
        corrected = self._correction(text, current=None)
        if corrected is not None:
            return self._after_correction(*corrected)
        if YES_RE.search(text) and not NO_RE.search(text):
            return self._complete(self.active)
        if NO_RE.search(text):
            self.active.awaiting = "correction"
            names = ", ".join(_label(f) for f in self.active.fields)
            return Reply(f"What should I change: {names}?")
        return Reply("Sorry, please say yes or no. " + self._confirmation_text())

    def _correction(self, text: str, *, current: dict | None) -> tuple[dict, Parsed] | None:
        """An earlier field the caller is changing, with its new value; None if this is not a correction.

        ``current`` is the field being asked (None at the confirmation): an answer
        that fits it is taken as that answer, unless another field is named.
        """
        active = self.active
        taken = [f for f in active.fields if f["name"] in active.values]
        lowered = text.lower()
        for field_def in taken:
            if self._names(field_def, lowered):
                value_text = VALUE_AFTER_RE.search(text)
                candidate = value_text.group(1) if value_text else text
                parsed = self._parse(field_def, candidate)
                if parsed is not None and (field_def.get("type", "text") != "text" or value_text) \
                        and parsed.value != active.values[field_def["name"]].value:
                    return field_def, parsed
        if current is not None and self._parse(current, text) is not None and current.get("type", "text") != "text":
            return None
        if current is not None and not CORRECTION_RE.search(text):
            return None
        for field_def in taken:
            if field_def.get("type", "text") == "text" or (current and field_def.get("type") == current.get("type")):
                continue
            parsed = self._parse(field_def, text)
            if parsed is not None and parsed.value != active.values[field_def["name"]].value:
                return field_def, parsed
        return None

    @staticmethod
    def _names(field_def: dict, text: str) -> bool:
        """Whether ``text`` names the field ("the time should be 5pm", "change the service")."""
        words = {_label(field_def), *TYPE_WORDS.get(field_def.get("type", "text"), ())}
        return any(re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE) for w in words)

    def _after_correction(self, field_def: dict, parsed: Parsed) -> Reply:
        self.active.values[field_def["name"]] = parsed
        return self._ask_next(prefix=f"Got it, {_label(field_def)} {parsed.spoken}. ")

    def _complete(self, active: _Active) -> Reply:
        scenario = active.scenario
        payload = {k: v.value for k, v in active.values.items()}
        self.collected.update(payload)
        self.completed.append(scenario["name"])
        self.active = None
        event = scenario.get("on_complete")
        if not event:
            return Reply(DONE)
        result = self.actions.fire_event(event, payload, context=self._context())
        self.events.append({"event": event, "scenario": scenario["name"], "fields": payload,
                            "delivered": None if result is None else result.ok})
        if result is None:
            return Reply(DONE, kind="action")
        if not result.ok:
            return Reply(DONE_ACTION_FAILED, kind="action", action=result)
        return Reply(result.say or DONE, kind="action", action=result)

    def _menu_key(self, key: str) -> Reply:
        """A key of the open menu: its option, or the menu again for a key it does not offer."""
        menu = self.menu["menu"]
        option = menu["keys"].get(key)
        if option is None:
            return Reply(f"{NO_SUCH_KEY} {menu['prompt']}")
        say = option.get("say", "")
        if "scenario" in option:
            target = next(s for s in self.scenarios if s["name"] == option["scenario"])
            return self._start(target, "", prefix=f"{say} " if say else None)
        if option.get("transfer"):
            if not getattr(self.config, "transfer_number", ""):
                return Reply(f"{NO_TRANSFER} {menu['prompt']}")
            reply = self.transfer_call()
            reply.text = say or reply.text
            return reply
        if option.get("end"):
            return self.end_call("goodbye", say or GOODBYE)
        return Reply(say)  # the menu stays open: another key may follow

    def _context(self) -> dict:
        return {"bot": getattr(self.config, "slug", ""), "scenario": self.last_scenario,
                "company_timezone": self.timezone}

    # --- outside scenarios --------------------------------------------------------

    def _off_script(self, text: str, *, use_knowledge: bool) -> Reply:
        """An answer from the documents: their own words (extractive) or the LLM's, fact-checked (generative).

        Nothing in the documents answers the question: an honest "I don't have that
        information", never a guess. A bot without a knowledge base lets the LLM
        answer from its system prompt (its reply is fact-checked against it).
        """
        if not use_knowledge:
            self.why["knowledge"] = "not used (knowledge is off): the LLM answers from its instructions"
            return Reply(kind="llm", use_llm=True)
        text = self._with_known_names(text)
        passages = []
        if self.retrieve is not None:
            try:
                passages = list(self.retrieve(text) or [])
            except Exception as exc:  # knowledge being down must not break the call
                logger.exception("knowledge retrieval failed")
                self.why["fallback"] = f"knowledge search failed ({type(exc).__name__})"
        self.why["passages"] = [passage_info(p) for p in passages]
        # Whether the documents answer at all is decided the same way in both styles: a model
        # only ever phrases an answer the documents hold, it never fills a gap in them.
        found = answers.extractive_answer(text, passages, embed=self.matcher.embed) if passages else None
        if found is not None and self.answer_style == "extractive":
            return Reply(found.text, kind="knowledge", passages=passages)
        if found is not None:  # the LLM reads only the closest sentences (prefill time, and less to misread)
            closest = best_sentences(text, passages, self.matcher.embed) if self.matcher.embed else passages
            return Reply(kind="knowledge", use_llm=True, passages=closest, documents=passages,
                         evidence=found.source)
        self.why.setdefault("fallback", "no knowledge passage above the score threshold" if not passages
                            else "passages were found, but none answers the question")
        if ASKING_RE.search(text) or POLICY_RE.search(text):  # a question the documents don't answer: never guess
            return Reply(self.dont_know(), kind="fallback", passages=passages)
        return Reply(self.config.fallback_phrase, kind="fallback")

    def _with_known_names(self, text: str) -> str:
        """The question with a misheard name of the bot's own services put right ("how much is a Joe
        manicure" -> "... gel manicure", "a Bailage" -> "a balayage"): the scenarios' choices are the
        business's vocabulary, and Whisper mishears them in questions as it does in answers. A name is
        replaced when it is matched by spelling or sound over two words, or closely over one."""
        if self._choice_names is None:
            self._choice_names = [c for s in self.scenarios for f in s.get("collect_fields") or ()
                                  for c in normalize.choices_of(f)]
        found = normalize.find_choice(text, self._choice_names) if self._choice_names else None
        if found is None or found.words == 0 or (found.words < 2 and found.score < 0.75):
            return text
        start, end = found.span
        return text if text[start:end].lower() == found.value.lower() else f"{text[:start]}{found.value}{text[end:]}"

    def _asks_for_information(self, text: str) -> bool:
        """A question about the business (a policy, a price, hours) rather than a request to book, though
        it names a booking word or a day: the documents are asked first. "Can I come in Friday at 4?"
        and "I'd like an appointment" are requests; "when are you open on Saturday?" is a question."""
        if self.retrieve is None:
            return False
        if POLICY_RE.search(text):
            return True
        if BOOKING_REQUEST_RE.search(text):
            return False
        if INFO_QUESTION_RE.search(text):
            return True
        if not text.rstrip().endswith("?"):
            return False
        found_date = normalize.find_date(text, today=self.today, country=self.country)
        return found_date is None and normalize.find_time(text, strict=True) is None

    def explain(self) -> dict:
        """What the last reply was based on: ``scenario`` ({name, how, score}: how is keyword, similarity,
        choice or active), ``passages`` ([{text, score, document, document_id}]), ``fallback`` (why)."""
        return dict(self.why)

    def dont_know(self) -> str:
        return answers.dont_know(can_transfer=bool(getattr(self.config, "transfer_number", "")))

    # --- persistence between HTTP requests (text chat) ------------------------------

    def snapshot(self) -> dict:
        """The conversation's state as JSON-able data (scenario config is not included)."""
        active = self.active
        return {
            "active": None if active is None else {
                "scenario": active.scenario["name"], "awaiting": active.awaiting, "failures": active.failures,
                "values": {k: [v.value, v.spoken] for k, v in active.values.items()},
            },
            "collected": self.collected, "last_scenario": self.last_scenario, "completed": self.completed,
            "menu": self.menu["name"] if self.menu else None,
            "events": self.events, "user_turns": self.user_turns, "ended": self.ended,
            "end_reason": self.end_reason,
        }

    def restore(self, data: dict) -> None:
        active = data.get("active")
        scenario = next((s for s in self.scenarios if active and s["name"] == active["scenario"]), None)
        self.active = None
        if scenario is not None:  # a scenario renamed since is simply dropped
            self.active = _Active(scenario, {k: Parsed(v[0], v[1]) for k, v in active["values"].items()},
                                  active["awaiting"], active["failures"])
        self.menu = next((s for s in self.scenarios if s["name"] == data.get("menu") and s.get("menu")),
                         None) if "menu" in data else self.menu
        self.collected = dict(data.get("collected") or {})
        self.last_scenario = data.get("last_scenario", "")
        self.completed = list(data.get("completed") or [])
        self.events = list(data.get("events") or [])
        self.user_turns = int(data.get("user_turns", 0))
        self.ended = bool(data.get("ended"))
        self.end_reason = data.get("end_reason", "")
