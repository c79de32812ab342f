"""Every fact a reply states is found in what the bot may rely on (pipelines.dialogue.grounding).

Pure Python: no model, no database. The salon handbook (tests/knowledge/data) is the
reference document: every one of its own sentences is grounded by it, and the inventions
the bundled LLM makes (a phone number, a price, a refund policy) are caught.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from knowledge.excerpts import sentences
from pipelines.dialogue.grounding import Fact, Sources, contradicts, facts, ungrounded

HANDBOOK = (Path(__file__).parents[1] / "knowledge" / "data" / "salon_handbook.md").read_text()
PROMPT = "You are Anna, the receptionist of Elegant Beauty Salon. Callers can reach us on (212) 555-0199."


@pytest.fixture(scope="module")
def salon() -> Sources:
    return Sources(HANDBOOK, PROMPT)


def kinds(found: list[Fact]) -> list[tuple[str, str]]:
    return [(f.kind, f.key) for f in found]


def test_an_invented_phone_number_is_ungrounded_and_the_real_one_is_not(salon):
    assert kinds(ungrounded("Please call 555-9999 to book.", salon)) == [("phone", "5559999")]
    assert ungrounded("You can call us on +1 212 555 0199.", salon) == []
    assert ungrounded("Our number is (212) 555-0199.", salon) == []
    assert ungrounded("Our number is two one two, five five five, zero one nine nine.", salon) == []
    assert kinds(ungrounded("Call 212 555 0198.", salon)) == [("phone", "2125550198")]
    berlin = Sources("Call us on +49 30 1234 5678.")
    assert ungrounded("Call 030 1234 5678.", berlin) == []
    assert kinds(ungrounded("Call 030 1234 5679.", berlin)) == [("phone", "03012345679")]


def test_prices_match_however_they_are_written_but_not_another_value(salon):
    for said in ("A women's cut is $45.", "A women's cut costs forty-five dollars.", "It is 45 dollars.",
                 "That's 45.00 dollars.", "It's $ 45."):
        assert ungrounded(said, salon) == [], said
    assert kinds(ungrounded("A women's cut is $54.", salon)) == [("price", "54")]
    assert kinds(ungrounded("A women's cut is fifty-four dollars.", salon)) == [("price", "54")]
    assert ungrounded("It's forty-five dollars.", Sources("The cut is $45.")) == []
    assert ungrounded("A cut is $45.", Sources("Women's cut ..... 45")) == []  # a price list without the currency


def test_times_are_strict_on_am_and_pm_but_not_on_how_they_are_said():
    sources = Sources("We open at 9 a.m. and close at 5:30 pm.")
    for said in ("We open at 9am.", "We open at 9 am.", "We open at nine in the morning.", "We open at 9:00 AM.",
                 "We close at half past five.", "We close at 5:30 in the evening.", "We close at 17:30."):
        assert ungrounded(said, sources) == [], said
    assert kinds(ungrounded("We open at 9pm.", sources)) == [("time", "21:00")]
    assert kinds(ungrounded("We close at 5:30 am.", sources)) == [("time", "05:30")]
    assert kinds(ungrounded("We open at ten in the morning.", sources)) == [("time", "10:00")]
    assert kinds(facts("See you at half past four.")) == [("time", "16:30")]
    assert kinds(facts("Come at 4:30 pm or at quarter to nine in the morning.")) == [
        ("time", "16:30"), ("time", "08:45")]


def test_days_plural_ranges_and_groups(salon):
    assert ungrounded("Medical foot care is on Tuesday.", salon) == []  # the handbook says "Tuesdays"
    assert ungrounded("We are open on Wednesdays.", salon) == []  # "Monday to Friday"
    assert ungrounded("We open Mon to Fri.", Sources("Open Mon-Fri 9am-5pm.")) == []
    assert ungrounded("Couples can book on Saturday.", Sources("Couples can book the double room on weekends.")) == []
    assert kinds(ungrounded("Foot care is on Thursdays.", Sources("Foot care is offered on Tuesdays."))) == [
        ("date", "thursday")]
    assert ungrounded("We're closed on March 3rd.", Sources("Closed on 3 March.")) == []
    assert kinds(ungrounded("We're closed on March 4th.", Sources("Closed on 3 March."))) == [("date", "03-04")]


def test_numbers_in_words_and_digits(salon):
    assert ungrounded("Gift vouchers are valid for 12 months.", salon) == []
    assert ungrounded("Please cancel 24 hours ahead.", salon) == []
    assert ungrounded("Members get 15% off in their birthday month.", salon) == []
    assert kinds(ungrounded("Gift vouchers are valid for thirteen months.", salon)) == [("number", "13")]
    assert kinds(ungrounded("Please cancel 48 hours ahead, or 36.", Sources("Cancel twenty-four hours ahead."))) == [
        ("number", "48"), ("number", "36")]
    assert kinds(facts("One hundred and twenty dollars, a hundred guests, 1,250 visitors.")) == [
        ("price", "120"), ("number", "100"), ("number", "1250")]


def test_names_are_grounded_when_the_sources_name_them(salon):
    assert ungrounded("The owner is Maria Lopez.", salon) == []
    assert ungrounded("Ask for maria lopez at the desk.", salon) == []
    assert ungrounded("We stock Kerastase and Olaplex.", salon) == []  # no accent in speech
    assert ungrounded("Hi, this is Anna from Elegant Beauty Salon.", salon) == []  # the prompt names them
    assert ungrounded("There is free Wi Fi and we take Apple Pay.", salon) == []  # "Wi-Fi" in the handbook
    assert kinds(ungrounded("Your stylist will be Jessica.", salon)) == [("name", "jessica")]
    assert kinds(ungrounded("We stock Redken products.", salon)) == [("name", "redken")]
    assert kinds(ungrounded("The salon is run by Maria Gonzalez.", salon)) == [("name", "maria gonzalez")]


def test_an_invented_email_is_ungrounded(salon):
    assert ungrounded("Send your CV to JOBS@elegant-beauty.example.", salon) == []
    assert kinds(ungrounded("Write to info@elegant-beauty.example.", salon)) == [
        ("email", "info@elegant-beauty.example")]


def test_a_refund_claim_the_policy_contradicts_is_reported():
    policy = Sources("A deposit of 20 dollars is required to book. Deposits are non-refundable.")
    for said in ("The deposit will be refunded in full.", "Your deposit is refundable.",
                 "We will refund your deposit."):
        found = ungrounded(said, policy)
        assert [f.kind for f in found] == ["claim"], said
        assert found[0].key == "refund:+:deposit"
        assert contradicts(said, policy)
    for said in ("Deposits are not refunded.", "I'm afraid the deposit is non-refundable.",
                 "We can't refund deposits."):
        assert ungrounded(said, policy) == [], said
        assert not contradicts(said, policy)
    # No source says anything about refunds: nothing to contradict (the other checks still apply).
    assert not contradicts("The deposit will be refunded in full.", Sources("A deposit of 20 dollars is required."))


def test_other_policy_claims_against_the_handbook(salon):
    for said in ("We're open on Sundays.", "We are closed on Saturdays.", "We are open every day.",
                 "We accept cheques.", "Cheques are welcome.", "Late cancellations are free of charge.",
                 "No-shows are not charged.", "Lash extensions are available.", "We offer lash extensions.",
                 "The patch test is not free.", "We are open on public holidays.", "A beard trim is free.",
                 "Removal of old gel is free."):
        assert [f.kind for f in ungrounded(said, salon)] == ["claim"], said
    for said in ("We're closed on Sundays.", "We are open on Saturdays from 10 am to 4 pm.",
                 "Yes, we open on Wednesday.", "We accept credit cards and Apple Pay.",
                 "Cheques aren't accepted, sorry.", "The patch test is free.", "Lash extensions are not available.",
                 "We don't offer lash extensions.", "Assistance dogs are welcome.",
                 "Late cancellations are charged half the price.", "A fringe trim is free for regular clients.",
                 "We'll fix it free of charge within seven days.", "We are not open on public holidays.",
                 "A trim is free for regular clients."):  # a fringe trim is; a beard trim is not: no clear claim
        assert ungrounded(said, salon) == [], said


def test_ordinary_sentences_have_no_facts():
    for said in ("Hello, thanks for calling! How can I help you today?", "Sure, I can help you book an appointment.",
                 "I'm sorry, I didn't catch that. Could you repeat it?", "Of course! What day works best for you?",
                 "Unfortunately I don't have that information.", "Would you like me to take a message?",
                 "One moment please.", "Which one would you prefer?", "First, may I ask what you're interested in?",
                 "Just a second, please.", "Absolutely, that's no problem.", "Okay, I've noted your request.",
                 "I can transfer you to a colleague if you like.", "Can I have your name, please?",
                 "Someone will call you back as soon as possible.", "Our team will be happy to help.",
                 "Have a lovely day!", "Is there anything else I can help you with?"):
        assert facts(said) == [], said
        assert ungrounded(said, Sources()) == [], said


def test_the_callers_words_and_later_texts_ground_what_is_said_back():
    sources = Sources("Appointments can be made by phone.")
    said = "I have you down as Priya, on 0151 2345 6789, on Friday at 4 pm."
    assert {f.kind for f in ungrounded(said, sources)} == {"name", "phone", "date", "time"}
    sources.add("My name is Priya, my number is 0151 2345 6789.", "Can I come Friday at 4 pm?")
    assert ungrounded(said, sources) == []


def test_every_sentence_of_the_handbook_is_grounded_by_the_handbook_and_by_its_own_section():
    whole = Sources(HANDBOOK)
    for sentence in sentences(HANDBOOK):
        assert ungrounded(sentence, whole) == [], sentence
    for section in HANDBOOK.split("\n## ")[1:]:
        own = Sources(section)
        for sentence in sentences(section):
            assert ungrounded(sentence, own) == [], sentence


def test_facts_found_in_a_handbook_sentence():
    assert kinds(facts("We open Monday to Friday from 9 am to 7 pm and Saturday from 10 am to 4 pm.")) == [
        ("date", "monday"), ("date", "friday"), ("time", "09:00"), ("time", "19:00"), ("date", "saturday"),
        ("time", "10:00"), ("time", "16:00")]
    owner = "The salon is run by owner Maria Lopez, a master colourist with twenty years of experience."
    assert kinds(facts(owner)) == [("name", "maria lopez"), ("number", "20")]
    assert kinds(facts("Send your CV and portfolio to jobs@elegant-beauty.example.")) == [
        ("name", "cv"), ("email", "jobs@elegant-beauty.example")]


def test_checking_a_sentence_takes_well_under_a_millisecond():
    """Budget: <= 30 ms p95 per reply (a few sentences). Printed; the assertion is loose (shared CI cores)."""
    sources = Sources(HANDBOOK, PROMPT)
    said = [s.lstrip("# ") for s in sentences(HANDBOOK)] + [
        "Please call 555-9999 to book.", "A women's cut is $54.", "The deposit will be refunded in full.",
        "We're open on Sundays from nine in the morning.", "Your stylist will be Jessica."]
    timings = []
    for _ in range(10):
        for sentence in said:
            start = time.perf_counter()
            ungrounded(sentence, sources)
            timings.append(time.perf_counter() - start)
    timings.sort()
    p50, p95 = timings[len(timings) // 2], timings[int(len(timings) * 0.95)]
    start = time.perf_counter()
    Sources(HANDBOOK)
    build = time.perf_counter() - start
    print(f"\nungrounded() over {len(timings)} sentences: p50 {p50 * 1e6:.0f} us, p95 {p95 * 1e6:.0f} us; "
          f"Sources(handbook, {len(HANDBOOK)} chars) {build * 1e3:.1f} ms")
    assert p95 < 0.005
