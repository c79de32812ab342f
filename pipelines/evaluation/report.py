"""Running a suite's cases, the figures, and the readable table.

``run_suite`` plays every case through a runner (text or voice) and scores it;
the result is one JSON-able dict: the figures and, per case, what was said, so a
failing case can be read. ``render`` turns it into the table and the failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipelines.evaluation import scoring
from pipelines.evaluation.runs import CaseRun, spoken_values
from pipelines.evaluation.suite import Suite, resolve_date

SECTIONS = ("questions", "bookings", "rules")


def _ratio(n: int, of: int) -> dict:
    return {"correct": n, "of": of, "rate": round(n / of, 3) if of else None}


def booking_scenario(config, booking) -> str:
    """The scenario a booking dialogue must complete: named, or the bot's first that collects fields."""
    if booking.scenario:
        return booking.scenario
    for scenario in config.scenarios or ():
        if scenario.get("collect_fields"):
            return scenario["name"]
    return ""


def run_suite(suite: Suite, runner, business, *, only: tuple[str, ...] = SECTIONS, limit: int | None = None,
              progress: Callable[[str], None] | None = None) -> dict:
    """Every selected case through ``runner``; returns the figures and the per-case results."""
    grounder = scoring.Grounder(business.sources)
    config = business.config
    say = progress or (lambda line: None)
    started = time.monotonic()
    picked = {name: (getattr(suite, name) if name in only else [])[:limit] for name in SECTIONS}
    runner.prepare([t for b in picked["bookings"] for t in b.turns]
                   + [q.ask for q in picked["questions"]]
                   + [t for r in picked["rules"] for t in r.turns if t is not None])

    questions = []
    for q in picked["questions"]:
        run = runner.run([q.ask])
        reply = " ".join(run.replies)
        invented = grounder.invented(reply, run.caller_words)
        score = scoring.score_question(reply, facts=q.facts, absent=q.absent, invented=invented,
                                       fallback=config.fallback_phrase, dont_know_phrases=suite.dont_know)
        turn = run.turns[0] if run.turns else None
        item = {"case": q.place, "ask": q.ask, "paraphrase": q.paraphrase, "absent": q.absent,
                "facts": [" / ".join(f) for f in q.facts], "reply": reply, "kind": turn.kind if turn else "",
                "correct": score.correct and not run.error, "missing": score.missing, "invented": score.invented,
                "dont_know": score.dont_know, "latency_ms": turn.latency_ms if turn else None}
        if turn is not None and turn.heard is not None:
            item["heard"] = turn.heard
        if run.error:
            item["error"] = run.error
        if q.note:
            item["note"] = q.note
        questions.append(item)
        say(f"{q.place} {'ok' if item['correct'] else 'WRONG'} {item['latency_ms']} ms: {reply[:80]!r}")

    bookings = []
    for b in picked["bookings"]:
        scenario = booking_scenario(config, b)
        run = runner.run(list(b.turns), scenario=scenario)
        expect = {k: (resolve_date(v, runner.today) if k_is_date(config, scenario, k, v) else v)
                  for k, v in b.expect.items()}
        wrong = scoring.booking_mismatches(run.fields, expect)
        completed = scenario in run.completed
        item = {"case": b.place, "scenario": scenario, "expect": expect, "completed": completed,
                "fields": run.fields, "wrong": wrong, "passed": completed and not wrong and not run.error,
                "end_reason": run.end_reason, **_dialogue(run, grounder)}
        if b.note:
            item["note"] = b.note
        bookings.append(item)
        say(f"{b.place} {'ok' if item['passed'] else 'FAILED'} fields={run.fields}")

    rules = []
    for r in picked["rules"]:
        run = runner.run(list(r.turns), overrides=r.bot or None)
        got = scoring.end_reason_of(run.end_reason)
        item = {"case": r.place, "expect_end": r.expect_end, "end_reason": got,
                "passed": got == r.expect_end and not run.error, **_dialogue(run, grounder)}
        if r.bot:
            item["bot"] = r.bot
        if r.note:
            item["note"] = r.note
        rules.append(item)
        say(f"{r.place} {'ok' if item['passed'] else 'FAILED'} end={got}")

    return {
        "suite": suite.name,
        "file": str(suite.path),
        "mode": runner.mode,
        "bot": config.slug,
        "today": runner.today.isoformat(),
        "documents": business.documents,
        "ingest_s": business.ingest_secs,
        "grounding": grounder.available,
        "figures": figures(questions, bookings, rules, grounder.available),
        "wall_s": round(time.monotonic() - started, 1),
        "questions": questions,
        "bookings": bookings,
        "rules": rules,
    }


def k_is_date(config, scenario: str, key: str, value: str) -> bool:
    """Whether an expected value is a date to resolve: the scenario's field is a date (or, with no
    such field known, the key is ``date``)."""
    from pipelines.evaluation.suite import is_date_expression

    if not is_date_expression(value):
        return False
    for s in config.scenarios or ():
        if s.get("name") == scenario:
            for f in s.get("collect_fields") or ():
                if f.get("name") == key:
                    return f.get("type") == "date"
    return key == "date"


def _dialogue(run: CaseRun, grounder: scoring.Grounder) -> dict:
    """The turns of a dialogue with each reply's invented facts (caller's words so far as sources)."""
    turns = []
    said: list[str] = []
    for t in run.turns:
        said += [w for w in (t.caller, t.heard) if w]
        # The caller's words as the engine understood them (read-backs of dates, times, numbers).
        understood = spoken_values(t.values if t.values is not None else run.fields)
        item = {"caller": t.caller, "bot": t.bot, "kind": t.kind, "latency_ms": t.latency_ms}
        if t.heard is not None:
            item["heard"] = t.heard
        invented = grounder.invented(t.bot, said + understood) if t.bot else []
        if invented:
            item["invented"] = invented
        turns.append(item)
    data = {"greeting": run.greeting, "turns": turns}
    if run.error:
        data["error"] = run.error
    return data


def figures(questions: list[dict], bookings: list[dict], rules: list[dict], grounding: bool) -> dict:
    def right(items):
        return _ratio(sum(1 for i in items if i["correct"]), len(items))

    plain = [q for q in questions if not q["paraphrase"] and not q["absent"]]
    paraphrased = [q for q in questions if q["paraphrase"]]
    absent = [q for q in questions if q["absent"]]
    dialogue_turns = [t for case in bookings + rules for t in case["turns"] if t["bot"]]
    invented = {"checked": grounding}
    if grounding:
        invented.update(
            answers=sum(1 for q in questions if q["invented"]), of=len(questions),
            rate=round(sum(1 for q in questions if q["invented"]) / len(questions), 3) if questions else None,
            dialogue_replies=sum(1 for t in dialogue_turns if t.get("invented")), dialogue_of=len(dialogue_turns),
        )
    fields_total = sum(len(b["expect"]) for b in bookings)
    fields_right = sum(len(b["expect"]) - len(b["wrong"]) for b in bookings)
    answer_ms = [q["latency_ms"] for q in questions]
    dialogue_ms = [t["latency_ms"] for t in dialogue_turns]
    return {
        "answers": {**right(questions), "plain": right(plain), "paraphrased": right(paraphrased),
                    "absent": right(absent)},
        "invented": invented,
        "bookings": {"completed": sum(1 for b in bookings if b["passed"]), "of": len(bookings),
                     "scenario_finished": sum(1 for b in bookings if b["completed"]),
                     "fields_right": fields_right, "fields": fields_total},
        "rules": {"passed": sum(1 for r in rules if r["passed"]), "of": len(rules)},
        "latency": {"all": scoring.latency(answer_ms + dialogue_ms), "answers": scoring.latency(answer_ms),
                    "dialogue": scoring.latency(dialogue_ms)},
    }


# --- the readable table ---------------------------------------------------------------

def _frac(part: dict, n="correct", of="of") -> str:
    if not part.get(of):
        return "-"
    return f"{part[n]}/{part[of]} ({100 * part[n] / part[of]:.0f}%)"


def _ms(part: dict) -> str:
    if not part["n"]:
        return "-"
    return f"median {part['median_ms']} ms, p95 {part['p95_ms']} ms (n={part['n']})"


def render(result: dict) -> str:
    f = result["figures"]
    docs = result["documents"]
    lines = [(f"Evaluation of suite {result['suite']!r}: {result['mode']}, bot {result['bot']}, "
              f"today {result['today']}")]
    if docs:
        lines.append(f"documents: {len(docs)} ingested, {sum(d['chunks'] for d in docs)} chunks "
                     f"({result['ingest_s']} s)")
    inv = f["invented"]
    if inv["checked"]:
        parts = []
        if inv["of"]:
            parts.append(f"{inv['answers']}/{inv['of']} answers")
        if inv["dialogue_of"]:
            parts.append(f"{inv['dialogue_replies']}/{inv['dialogue_of']} dialogue replies")
        invented = "; ".join(parts) or "-"
    else:
        invented = "not checked (pipelines.dialogue.grounding is not installed)"
    b = f["bookings"]
    rows = [
        ("answer accuracy", _frac(f["answers"])),
        ("  plain questions", _frac(f["answers"]["plain"])),
        ("  paraphrased", _frac(f["answers"]["paraphrased"])),
        ("  absent (honest don't-know)", _frac(f["answers"]["absent"])),
        ("replies with invented facts", invented),
        ("bookings completed", _frac(b, "completed") + (f"; fields right {b['fields_right']}/{b['fields']}, "
                                                        f"scenario finished {b['scenario_finished']}"
                                                        if b["of"] else "")),
        ("rule cases passed", _frac(f["rules"], "passed")),
        ("reply latency, all", _ms(f["latency"]["all"])),
        ("  answers", _ms(f["latency"]["answers"])),
        ("  dialogue turns", _ms(f["latency"]["dialogue"])),
        ("wall time", f"{result['wall_s']} s"),
    ]
    width = max(len(r[0]) for r in rows) + 2
    lines += ["", *(f"{name:<{width}}{value}" for name, value in rows)]
    failures = failures_text(result)
    if failures:
        lines += ["", "Failures:", *failures]
    return "\n".join(lines)


def failures_text(result: dict) -> list[str]:
    out = []
    for q in result["questions"]:
        if q["correct"] and not q["invented"]:
            continue
        why = []
        if q["absent"] and not q["dont_know"]:
            why.append("not a don't-know")
        if q["missing"]:
            why.append("missing " + ", ".join(q["missing"]))
        if q["invented"]:
            why.append("invented " + ", ".join(q["invented"]))
        if q.get("error"):
            why.append(q["error"])
        heard = f" (heard {q['heard']!r})" if q.get("heard") is not None else ""
        out.append(f"- {q['case']} {q['ask']!r}{heard}: {'; '.join(why)}\n    bot: {q['reply']!r}")
    for case in result["bookings"] + result["rules"]:
        if case["passed"]:
            continue
        if "expect_end" in case:
            why = f"ended {case['end_reason']}, expected {case['expect_end']}"
        elif not case["completed"]:
            why = f"not completed (fields so far {case['fields']})"
        else:
            why = "wrong " + ", ".join(f"{k}: got {v['got']!r}, expected {v['expected']!r}"
                                      for k, v in case["wrong"].items())
        if case.get("error"):
            why += f"; {case['error']}"
        convo = "\n".join(f"    caller: {t['caller'] if t['caller'] is not None else '(silence)'}"
                          + (f" [heard {t['heard']!r}]" if t.get("heard") is not None else "")
                          + f"\n    bot: {t['bot']}" for t in case["turns"])
        out.append(f"- {case['case']}: {why}\n{convo}")
    return out
