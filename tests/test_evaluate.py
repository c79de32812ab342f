"""`manage.py evaluate SUITE.yaml`: suite validation, scoring, and the CI suite end to end.

The end-to-end test runs eval/ci/suite.yaml in text mode against the bundled LLM,
with the documents ingested for real (knowledge service -> MiniLM -> pgvector) in a
throwaway company that is gone afterwards. It checks the figures' counts, not their
values: the accuracy is the brain's, measured, not asserted.
"""

from __future__ import annotations

import json
import textwrap
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from pipelines.evaluation import scoring
from pipelines.evaluation.suite import SuiteError, load_suite, resolve_date

CI_SUITE = Path(settings.BASE_DIR) / "eval" / "ci" / "suite.yaml"
SALON_SUITE = Path(settings.BASE_DIR) / "eval" / "salon" / "suite.yaml"


def write_suite(tmp_path: Path, text: str) -> Path:
    (tmp_path / "faq.md").write_text("# FAQ\n\nA gel manicure costs 35 dollars.\n")
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text))
    return path


# --- (a) validation names the place ------------------------------------------------------

def test_suite_errors_name_their_place(tmp_path):
    path = write_suite(tmp_path, """
        today: 2026-13-01
        company: {name: Salon, timezone: Mars/Olympus}
        bot:
          temperature: 7
          scenarios:
            - name: booking
              trigger_keywords: [book]
              collect_fields: [{name: date, prompt: "Which day?", type: dat}]
        documents: [faq.md, missing.md]
        questions:
          - {ask: "How much is a gel manicure?", facts: ["35"]}
          - {ask: "Opening hours?"}
          - {ask: "Tattoos?", absent: true, facts: ["no"]}
          - {ask: "Parking?", facts: "behind the building"}
          - {ask: "", facts: ["x"], colour: red}
        bookings:
          - {turns: ["book a pedicure", "tomorrow"], expect: {time: 16:00, phone: +12025550111, date: "+1x"}}
          - {expect: {service: pedicure}}
        rules:
          - {turns: ["bye"], expect_end: hangup}
          - {turns: [{silence: 2}], expect_end: silence, bot: {max_turns: many, greeting: hi}}
    """)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    errors = caught.value.errors
    text = "\n".join(errors)
    expected = [
        "today: expected a date YYYY-MM-DD, got '2026-13-01'",
        "company.timezone: ",
        "bot.temperature: ",
        "bot.scenarios[0].collect_fields[0].type: 'dat' is not one of",
        "documents[1]: no such file missing.md",
        "questions[1]: give the facts the answer must state",
        "questions[2]: an absent answer has no facts",
        "questions[3].facts: expected a list",
        "questions[4].ask: expected a non-empty text",
        "questions[4]: unknown key(s) colour",
        "bookings[0].expect.time: expected a text in quotes, got 960",
        "bookings[0].expect.phone: expected a text in quotes, got 12025550111",
        "bookings[0].expect.date: '+1x' is not a date",
        "bookings[1].turns: missing",
        "rules[0].expect_end: 'hangup' is not one of goodbye, transfer, max_turns, silence, none",
        "rules[1].turns[0]: expected a text or {silence: true}",
        "rules[1].bot.max_turns: expected a number",
        "rules[1].bot: unknown key(s) greeting",
    ]
    for start in expected:
        assert any(e.startswith(start) for e in errors), f"no error starting {start!r} in:\n{text}"
    assert len(errors) == len(expected), text


def test_the_command_refuses_an_invalid_suite_naming_the_place(tmp_path):
    path = write_suite(tmp_path, """
        documents: [faq.md]
        questions:
          - {ask: "How much is a gel manicure?", facts: ["35"]}
          - {ask: "Parking?", facts: "behind the building"}
    """)
    with pytest.raises(CommandError, match=r"questions\[1\]\.facts: expected a list"):
        call_command("evaluate", str(path), stdout=StringIO(), stderr=StringIO())
    (tmp_path / "broken.yaml").write_text("questions: [ask: x\n")
    with pytest.raises(CommandError, match=r"not valid YAML \(line 2, column 1\)"):
        call_command("evaluate", str(tmp_path / "broken.yaml"), stdout=StringIO(), stderr=StringIO())


def test_the_shipped_suites_have_the_promised_cases():
    ci = load_suite(CI_SUITE)
    assert (len(ci.questions), len(ci.bookings), len(ci.rules)) == (3, 3, 2)
    try:
        salon = load_suite(SALON_SUITE)
    except SuiteError as exc:  # the scenario engine's `choices:` is not in this tree yet
        if any("unknown key(s) choices" in e for e in exc.errors) and len(exc.errors) == 1:
            pytest.skip("voicebot.scenarios does not know `choices:` yet")
        raise
    questions = salon.questions
    assert len(questions) >= 30
    assert sum(q.paraphrase for q in questions) * 3 >= len(questions)
    assert sum(q.absent for q in questions) >= 6
    assert len(salon.bookings) == 15 and len(salon.rules) >= 5
    assert {"goodbye", "transfer", "max_turns", "silence"} <= {r.expect_end for r in salon.rules}
    assert len(salon.documents) == 3


def test_relative_dates_are_read_against_today():
    from datetime import date

    today = date(2026, 3, 10)  # a Tuesday
    assert resolve_date("+1d", today) == "2026-03-11"
    assert resolve_date("tomorrow", today) == "2026-03-11"
    assert resolve_date("friday", today) == "2026-03-13"
    assert resolve_date("tuesday", today) == "2026-03-10"
    assert resolve_date("next tuesday", today) == "2026-03-17"
    assert resolve_date("2026-04-01", today) == "2026-04-01"


# --- (c) scoring -------------------------------------------------------------------------

@pytest.mark.parametrize("reply", ["A gel manicure is 35 dollars.", "That's $35.", "It costs thirty-five dollars.",
                                   "Gel nails are 35.00 USD."])
def test_a_reply_stating_the_fact_counts(reply):
    score = scoring.score_question(reply, facts=[["35"], ["gel"]] if "gel" in reply.lower() else [["35"]],
                                   absent=False, invented=[])
    assert score.correct and not score.missing


def test_a_reply_stating_a_wrong_number_does_not_count():
    score = scoring.score_question("A gel manicure is 38 dollars.", facts=[["35"]], absent=False, invented=None)
    assert not score.correct and score.missing == ["35"]
    assert not scoring.states("We close at 17:30.", "7")
    assert not scoring.states("It is 350 dollars.", "35")
    assert scoring.states("We open at 9:00 a.m.", "9 am")
    assert scoring.states("two one two, five five five", "2 1 2")


def test_honest_dont_knows_and_claimed_answers():
    fallback = "Sorry, I didn't catch that. Would you like to book, or do you have a question?"
    for reply in [fallback, "I'm sorry, I don't have that information.", "I'm not sure about that, sorry.",
                  "I'm sorry, I can't answer that right now. Which day?"]:
        assert scoring.score_question(reply, facts=[], absent=True, invented=[], fallback=fallback).correct, reply
    claim = scoring.score_question("Tattoo removal is 99 dollars.", facts=[], absent=True, invented=["99 dollars"],
                                   fallback=fallback)
    assert not claim.correct and not claim.dont_know
    hedged = scoring.score_question("I don't know, but it is probably 99 dollars.", facts=[], absent=True,
                                    invented=["99 dollars"], fallback=fallback)
    assert not hedged.correct


def test_bookings_compare_every_expected_field():
    got = {"service": "Gel Manicure", "date": "2026-03-11", "time": "16:00", "phone": "+12025550111"}
    expect = {"service": "gel manicure", "date": "2026-03-11", "time": "16:00", "phone": "+12025550111"}
    assert scoring.booking_mismatches(got, expect) == {}
    wrong = scoring.booking_mismatches({**got, "service": "Joe manicure", "time": "04:00"}, expect)
    assert set(wrong) == {"service", "time"} and wrong["time"] == {"expected": "16:00", "got": "04:00"}
    assert set(scoring.booking_mismatches({}, expect)) == set(expect)


def test_latency_figures():
    assert scoring.latency([100, 300, 200, 400]) == {"n": 4, "median_ms": 250, "p95_ms": 400}
    assert scoring.latency([]) == {"n": 0, "median_ms": None, "p95_ms": None}


def test_a_wrong_number_counts_as_invented():
    pytest.importorskip("pipelines.dialogue.grounding", reason="the grounding module is not in this tree yet")
    grounder = scoring.Grounder(["Gel manicure: 35 dollars.", "Classic manicure: 25 dollars."])
    assert grounder.invented("A gel manicure is 35 dollars.", ["how much is a gel manicure?"]) == []
    invented = grounder.invented("A gel manicure is 38 dollars.", ["how much is a gel manicure?"])
    assert invented and any("38" in fact for fact in invented)
    # The caller's own words are a source too.
    assert grounder.invented("Sure, 4 pm on Friday.", ["Friday at 4 pm please"]) == []
    score = scoring.score_question("A gel manicure is 38 dollars.", facts=[["35"]], absent=False, invented=invented)
    assert not score.correct and score.invented
    # Stating the fact beside an invented one is not a right answer either.
    both = "A gel manicure is 35 dollars and a pedicure is 99 dollars."
    assert not scoring.score_question(both, facts=[["35"]], absent=False,
                                      invented=grounder.invented(both, [])).correct


# --- (b) the CI suite end to end ------------------------------------------------------------

@pytest.mark.models
@pytest.mark.django_db(transaction=True)
def test_the_ci_suite_runs_end_to_end_in_text_mode(llm_server):
    from knowledge.models import KnowledgeChunk, KnowledgeDocument
    from voicebot.models import Bot, Company

    out, err = StringIO(), StringIO()
    call_command("evaluate", str(CI_SUITE), "--json", stdout=out, stderr=err)
    result = json.loads(out.getvalue())

    assert result["mode"] == "text" and result["suite"] == "ci" and result["today"] == "2026-03-10"
    assert result["llm"] == llm_server
    [document] = result["documents"]
    assert document["status"] == "ready" and document["chunks"] >= 1
    f = result["figures"]
    assert (f["answers"]["of"], f["answers"]["plain"]["of"], f["answers"]["paraphrased"]["of"],
            f["answers"]["absent"]["of"]) == (3, 1, 1, 1)
    assert 0 <= f["answers"]["correct"] <= 3
    assert f["answers"]["correct"] == sum(q["correct"] for q in result["questions"])
    assert (f["bookings"]["of"], f["bookings"]["fields"], f["rules"]["of"]) == (3, 12, 2)
    assert f["latency"]["answers"]["n"] == 3 and f["latency"]["answers"]["median_ms"] > 0
    assert f["invented"]["checked"] == (scoring.load_grounding() is not None)
    if f["invented"]["checked"]:
        assert f["invented"]["of"] == 3
    # Per case: what was said, so a failure can be read.
    assert all(q["reply"] for q in result["questions"])
    assert [b["case"] for b in result["bookings"]] == ["bookings[0]", "bookings[1]", "bookings[2]"]
    assert result["bookings"][0]["expect"]["date"] == "2026-03-11"  # "+1d" against the suite's today
    assert all(b["turns"] and b["greeting"] for b in result["bookings"])
    assert [r["expect_end"] for r in result["rules"]] == ["goodbye", "transfer"]
    assert "questions[0]" in err.getvalue()  # progress on stderr
    # The throwaway company is gone with its bot, documents and chunks.
    assert not Company.objects.filter(slug__startswith="eval-").exists()
    assert not Bot.objects.filter(slug__startswith="eval-").exists()
    assert not KnowledgeDocument.objects.exists() and not KnowledgeChunk.objects.exists()

    table = StringIO()
    call_command("evaluate", str(CI_SUITE), "--only", "rules", stdout=table, stderr=StringIO())
    assert "rule cases passed" in table.getvalue() and "answer accuracy" in table.getvalue()


def test_voice_turns_are_put_with_the_scripted_turn_they_sound_like():
    from pipelines.evaluation.runs import CaseRun
    from pipelines.evaluation.voice import VoiceRunner

    scripted = ["um hi I'd like to book a pedicure", "tomorrow", "sure, 202 555 0111", "yes"]
    report = [{"role": "bot", "text": "Hello!"},
              {"role": "caller", "text": "I'm high I'd like to book a pedicure."},
              {"role": "bot", "text": "Sure. Which day?", "v2v_ms": 500},
              {"role": "caller", "text": "Tomorrow."}, {"role": "bot", "text": "Your phone number?", "v2v_ms": 400},
              {"role": "caller", "text": "Sure."}, {"role": "caller", "text": "202 555 0111"},
              {"role": "bot", "text": "Let me confirm: ... Is that right?", "v2v_ms": 300},
              {"role": "caller", "text": "Yes."}, {"role": "bot", "text": "Booked.", "v2v_ms": 200},
              {"role": "bot", "text": "Anything else?"}]
    run = CaseRun()
    VoiceRunner._turns(run, report, scripted)
    assert run.greeting == "Hello!"
    assert [(t.caller, t.heard, t.bot) for t in run.turns] == [
        (scripted[0], "I'm high I'd like to book a pedicure.", "Sure. Which day?"),
        ("tomorrow", "Tomorrow.", "Your phone number?"),
        ("sure, 202 555 0111", "Sure.", ""),
        ("(continued) sure, 202 555 0111", "202 555 0111", "Let me confirm: ... Is that right?"),
        ("yes", "Yes.", "Booked. Anything else?"),  # the bot's turns after one caller turn are one reply
    ]
    assert [t.latency_ms for t in run.turns] == [500, 400, None, 300, 200]
    silent = CaseRun()
    VoiceRunner._turns(silent, [{"role": "bot", "text": "Hello!"}, {"role": "bot", "text": "Are you still there?"},
                                {"role": "bot", "text": "Goodbye!"}], [None, None])
    assert [(t.caller, t.bot) for t in silent.turns] == [(None, "Are you still there?"), (None, "Goodbye!")]
