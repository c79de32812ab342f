"""Answers in the documents' own words, or None (pipelines.dialogue.answers).

The question sets are in tests/dialogue/data: the demo salon's handbook questions
(tests/knowledge/data/questions.json, paraphrased) plus present, paraphrased and absent
ones; a dental clinic and a restaurant for other wording. Passages are found as the call
runner finds them: the document's sections ranked by the bundled MiniLM against the
question (section title embedded with the text, the text alone returned), the top 3.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from pipelines.dialogue import answers
from pipelines.dialogue.answers import Answer, dont_know, extractive_answer, spoken
from pipelines.dialogue.grounding import Sources, facts, ungrounded

DATA = Path(__file__).parent / "data"
HANDBOOK = Path(__file__).parents[1] / "knowledge" / "data" / "salon_handbook.md"
DOCUMENTS = {
    "salon": (HANDBOOK, DATA / "salon_answers.json"),
    "clinic": (DATA / "clinic_faq.md", DATA / "clinic_answers.json"),
    "restaurant": (DATA / "restaurant_guide.md", DATA / "restaurant_answers.json"),
}
# Held out: callers' casual wording ("you guys", "gonna", dropped words) for the clinic and the restaurant,
# with absent questions in the same style; written before the spoken-wording mechanisms, never tuned on.
SPOKEN = {"clinic": DATA / "clinic_spoken.json", "restaurant": DATA / "restaurant_spoken.json"}


class Sections:
    """A markdown document's sections ranked against a question, like ``knowledge.search``."""

    def __init__(self, path: Path, embed):
        self.embed = embed
        self.sections = []
        for block in path.read_text().split("\n## ")[1:]:
            title, _, body = block.partition("\n")
            self.sections.append((title.strip(), body.strip()))
        self.vectors = np.asarray(embed([f"{t}\n{b}" for t, b in self.sections]), dtype=np.float32)

    def __call__(self, question: str, k: int = 3, titles: bool = False) -> list[str]:
        scores = self.vectors @ np.asarray(self.embed([question]), dtype=np.float32)[0]
        top = np.argsort(-scores)[:k]
        return [f"## {self.sections[i][0]}\n{self.sections[i][1]}" if titles else self.sections[i][1] for i in top]


@pytest.fixture(scope="module")
def documents(embed):
    return {name: (Sections(doc, embed), json.loads(questions.read_text()))
            for name, (doc, questions) in DOCUMENTS.items()}


def evaluate(sections: Sections, questions: list[dict], embed, **kwargs) -> dict:
    """Accuracy (answered and the answer holds the expected fact, or None for an absent one),
    false answers (an absent question answered) and the misses, for the report."""
    right, false, misses = 0, [], []
    for item in questions:
        passages = sections(item["q"], **kwargs)
        answer = extractive_answer(item["q"], passages, embed=embed)
        if item["expect"] is None:
            if answer is None:
                right += 1
            else:
                false.append((item["q"], answer.text))
        elif answer is not None and any(e in answer.text.lower() for e in item["expect"]):
            right += 1
            # What is said is the documents' own words: every fact is grounded in the passages.
            assert ungrounded(answer.text, Sources(*passages)) == [], (item["q"], answer.text)
        else:
            misses.append((item["q"], answer.text if answer else None))
    return {"accuracy": right / len(questions), "false": false, "misses": misses,
            "absent": sum(1 for i in questions if i["expect"] is None), "n": len(questions)}


def report(name: str, result: dict) -> None:
    print(f"\n{name}: accuracy {result['accuracy']:.3f} over {result['n']} questions; "
          f"false answers {len(result['false'])}/{result['absent']} absent; misses {result['misses']}")


def test_the_salon_question_set_is_large_enough(documents):
    questions = documents["salon"][1]
    count = {kind: sum(1 for q in questions if q["kind"] == kind) for kind in ("present", "paraphrased", "absent")}
    assert len(questions) >= 40 and count["absent"] >= 12 and count["paraphrased"] >= 12, count
    shipped = {q["question"] for q in json.loads((HANDBOOK.parent / "questions.json").read_text())}
    assert shipped <= {q["q"] for q in questions}  # the retrieval set is in it


def test_salon_handbook_questions_are_answered_and_absent_ones_are_not(documents, embed):
    sections, questions = documents["salon"]
    result = evaluate(sections, questions, embed)
    report("salon (passages without titles)", result)
    assert result["false"] == []
    assert result["accuracy"] >= 0.9
    titled = evaluate(sections, questions, embed, titles=True)
    report("salon (passages with titles)", titled)
    assert titled["false"] == []
    assert titled["accuracy"] >= 0.9


def test_without_the_embedder_the_lexical_test_alone_never_answers_an_absent_question(documents):
    sections, questions = documents["salon"]
    result = evaluate(sections, questions, None)
    report("salon, lexical only", result)
    assert result["false"] == []
    assert result["accuracy"] >= 0.85


@pytest.mark.parametrize("name", ["clinic", "restaurant"])
def test_other_documents(documents, embed, name):
    sections, questions = documents[name]
    result = evaluate(sections, questions, embed)
    report(name, result)
    assert result["false"] == []
    assert result["accuracy"] >= 0.85


@pytest.mark.parametrize("name", ["clinic", "restaurant"])
def test_spoken_wording_of_other_businesses(documents, embed, name):
    """Casual questions (held out): measured 0.50 (clinic) and 0.67 (restaurant) before fillers, spoken
    phrases and the hours/name kinds; 0.87 and 0.83 after, no absent question answered."""
    sections = documents[name][0]
    questions = json.loads(SPOKEN[name].read_text())
    result = evaluate(sections, questions, embed, titles=True)
    report(f"{name}, spoken", result)
    assert result["false"] == []
    assert result["accuracy"] >= 0.8


def test_answerability_a_negative_statement_answers_a_missing_word_does_not(embed):
    lashes = ["Eyebrow shaping with wax costs 15 dollars. Lash extensions are not offered."]
    answer = extractive_answer("Do you do lash extensions?", lashes, embed=embed)
    assert answer is not None and answer.text == "Lash extensions are not offered."
    prices = [("A routine check-up costs 60 dollars. A professional cleaning is 85 dollars. "
               "White fillings start at 120 dollars.")]
    check_up = extractive_answer("How much is a check-up?", prices, embed=embed)
    assert check_up.text == "A routine check-up costs 60 dollars."
    assert extractive_answer("How much is a child's check-up?", prices, embed=embed) is None
    assert extractive_answer("How much is a child's check-up?", prices) is None
    for about_the_phone in ("Appointments can be made by phone or online.",
                            "You can reach our phone line during opening hours."):
        assert extractive_answer("What's your phone number?", [about_the_phone], embed=embed) is None
    number = extractive_answer("What's your phone number?", ["Call us on (415) 555-0142."], embed=embed)
    assert "555-0142" in number.text
    assert extractive_answer("How much is a Brazilian wax?", ["Eyebrow shaping with wax costs 15 dollars."],
                             embed=embed) is None


def test_a_missing_word_the_meaning_depends_on_makes_it_no_answer(embed):
    nails = ["A classic manicure is 25 dollars. Gel polish that lasts up to three weeks costs 35 dollars."]
    assert "35 dollars" in extractive_answer("How much is a gel manicure?", nails, embed=embed).text
    for question in ("How much is gel nail art?", "Is gel polish vegan?", "Do you do gel manicures for kids?"):
        assert extractive_answer(question, nails, embed=embed) is None, question
    # A missing word that does not change what is asked is fine.
    payment = ["We accept cash, all major credit and debit cards, Apple Pay and Google Pay."]
    assert extractive_answer("Can I pay with my phone or a card?", payment, embed=embed).text == payment[0]


def test_list_lines_markdown_and_tables_become_speech():
    menu = [("## Nail menu\n- Gel manicure: 35 dollars\n- Classic manicure: $25\n* **Pedicure** – 40 dollars\n"
             "| Service | Price |\n|---|---|\n| Lash lift | $65 |\n"),
            "## Pedicure\nPrice: 40 dollars\nDuration: 50 minutes"]
    assert extractive_answer("How much is a gel manicure?", menu) == Answer(
        "A gel manicure is 35 dollars.", "Gel manicure: 35 dollars", 1.0)
    assert extractive_answer("How much is a classic manicure?", menu).text == "A classic manicure is 25 dollars."
    assert extractive_answer("What does the lash lift cost?", menu).text == "A lash lift is 65 dollars."
    duration = extractive_answer("How long does a pedicure take?", menu)
    assert duration.text == "For a pedicure, the duration is 50 minutes."
    assert extractive_answer("Where can I park?", ["Parking: behind the building, free for clients."]).text == (
        "Parking is behind the building, free for clients.")
    assert spoken("**Note:** it's $45.50 (tax included) & 10% off, e.g. from 9am-5pm") == (
        "Note: it's 45 dollars 50, tax included, and 10 percent off, for example from 9 am to 5 pm.")


def test_a_long_sentence_is_cut_to_the_clause_that_answers(embed):
    brows = [("Eyebrow shaping with wax costs 15 dollars, tinting of lashes or brows costs 18 dollars, and a lash lift "
              "with tint is 65 dollars.")]
    answer = extractive_answer("How much is a lash lift?", brows, embed=embed)
    assert answer.text == "A lash lift with tint is 65 dollars."
    assert answer.source == brows[0]
    # A yes/no question hears the whole sentence.
    assert extractive_answer("Can I get my brows done?", brows, embed=embed).text == brows[0]


def test_a_sentence_that_leans_on_the_one_before_brings_it_along(embed):
    vouchers = [("Gift vouchers are sold in any amount from 20 dollars at the reception or online. They are valid for "
                 "twelve months and can be used for every service and product.")]
    answer = extractive_answer("How long is a gift voucher valid?", vouchers, embed=embed)
    assert answer.text == vouchers[0]
    assert answer.source.startswith("They are valid")


def test_no_question_or_no_passages_no_answer(embed):
    assert extractive_answer("", ["A classic manicure is 25 dollars."], embed=embed) is None
    assert extractive_answer("How much is a manicure?", [], embed=embed) is None
    assert extractive_answer("How much is a manicure?", ["", "   "], embed=embed) is None


def test_dont_know_is_honest_offers_what_the_bot_can_do_and_states_no_fact():
    plain = dont_know()
    assert plain.startswith("I'm sorry, I don't have that information.")
    assert "message" in plain and "transfer" not in plain
    assert "transfer" in dont_know(can_transfer=True)
    custom = dont_know(fallback="Sorry, I can't answer that")
    assert custom.startswith("Sorry, I can't answer that.") and "message" in custom
    assert dont_know(fallback="I'll ask a colleague to call you back.") == "I'll ask a colleague to call you back."
    for text in (plain, dont_know(can_transfer=True), custom):
        assert facts(text) == [], text


def test_an_answer_takes_a_few_milliseconds(documents, embed):
    """One question embedding and a few sentence embeddings (cached between questions). Printed; loose bound."""
    sections, questions = documents["salon"]
    cold, warm = [], []
    for item in questions:
        passages = sections(item["q"])
        answers._CACHE.clear()
        start = time.perf_counter()
        extractive_answer(item["q"], passages, embed=embed)
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        extractive_answer(item["q"], passages, embed=embed)
        warm.append(time.perf_counter() - start)
    cold.sort()
    warm.sort()

    def pct(values, p):
        return values[min(len(values) - 1, int(len(values) * p))] * 1e3

    print(f"\nextractive_answer over {len(cold)} questions: cold cache p50 {pct(cold, .5):.1f} ms, p95 "
          f"{pct(cold, .95):.1f} ms; warm p50 {pct(warm, .5):.1f} ms, p95 {pct(warm, .95):.1f} ms")
    assert pct(cold, 0.95) < 250


PRICE_LIST = ("Hair\nMen's classic haircut: 30 dollars.\nBeard trim, added to a men's cut: 12 dollars.\n"
              "Kids' haircut, children under 12: 22 dollars.")
NAILS = "Nails\nClassic manicure: 25 dollars.\nGel manicure: 35 dollars.\nRemoval of old gel polish: 10 dollars."
BODY = ("Face and body\nEyebrow shaping with wax: 15 dollars.\nFull-body massage, 60 minutes: 70 dollars.\n"
        "Back and shoulder massage, 30 minutes: 40 dollars.")
REFUNDS = ("Refunds\nServices are not refunded in cash. If you are not happy with a service, tell us within 7 days and "
           "we will redo it free of charge.")
PAYMENT = ("Payment methods\nWe accept cash, Visa, Mastercard, American Express, debit cards, Apple Pay and Google Pay. "
           "Cheques are not accepted.")


def test_casual_fillers_are_not_what_is_asked_about(embed):
    """"yo", "you guys", "somewhere", "during the week": a caller's filler, not a key word no sentence has."""
    assert "40 dollars" in extractive_answer("what do you guys charge for a back rub", [BODY], embed=embed).text
    assert extractive_answer("yo how much is a full-body massage", [BODY], embed=embed).text == (
        "A full-body massage, 60 minutes, is 70 dollars.")
    parking = ["Parking\nThere are four free parking spaces for clients behind the building."]
    assert "behind the building" in extractive_answer("is there somewhere to leave my car", parking, embed=embed).text
    hours = [("Opening hours\nWe are open Monday to Friday from 7:30 am to 6 pm and Saturday from 8 am to 12 pm. "
              "We are closed on Sundays.")]
    week = extractive_answer("when do you open in the morning during the week", hours, embed=embed)
    assert "7:30 am" in week.text  # a clock time's colon is no "label: value" ("7 is 30 am")
    booking = ["Booking\nWe recommend reserving one week ahead for Saturdays, which fill up quickly."]
    for question in ("till when are you around on saturdays", "till when can I come in on saturdays"):
        assert "12 pm" in extractive_answer(question, booking + hours, embed=embed).text, question
    sundays = ["Sundays\nThe salon is closed on Sundays and on public holidays."]
    assert "closed on Sundays" in extractive_answer("you guys open sundays?", sundays, embed=embed).text
    # "a back rub": "back" names the body part after "a"/"my" (without the embedder: the words alone decide)
    assert extractive_answer("how much for a back rub?", [BODY]).text == (
        "A back and shoulder massage, 30 minutes, is 40 dollars.")
    # Fillers do not make an absent question answerable.
    assert extractive_answer("yo do you guys do tattoos", [BODY, PRICE_LIST], embed=embed) is None
    assert extractive_answer("you guys got a place in Boston too?", hours + parking, embed=embed) is None


def test_a_list_line_about_more_than_was_asked_gives_way(embed):
    """"a guy's cut" is the men's haircut, not the beard trim "added to a men's cut"; "nails with gel polish"
    the gel manicure, not the removal of gel polish (and the list's first line is no topic to say first)."""
    cut = extractive_answer("yo how much for a guy's cut", [PRICE_LIST], embed=embed)
    assert cut.text == "A men's classic haircut is 30 dollars."
    assert [u.around for u in answers._units([NAILS])] == ["", "", ""]  # a list's first line is no topic
    assert answers._units([REFUNDS])[1].around == "Services are not refunded in cash."
    gel = extractive_answer("what would it cost me to get my nails done with gel polish", [NAILS], embed=embed)
    assert gel.text == "A gel manicure is 35 dollars."
    assert extractive_answer("How much is a classic manicure?", [NAILS], embed=embed).text == (
        "A classic manicure is 25 dollars.")
    assert "10 dollars" in extractive_answer("How much is it to take off old gel polish?", [NAILS], embed=embed).text


def test_a_sentence_that_names_what_was_asked_beats_one_that_answers_it_one_way(embed):
    """A no-show is answered by the cancellation terms only when nothing names it."""
    policy = [("Cancellations and no-shows\nPlease cancel or reschedule at least 24 hours before your appointment. "
               "Late cancellations and no-shows are charged 50 percent of the price of the booked service.")]
    for question in ("What happens if I don't show up for my appointment?", "what if I don't turn up for my appointment",
                     "if I bail on my appointment last minute do I still have to pay something"):
        assert "50 percent" in extractive_answer(question, policy, embed=embed).text, question
    only_cancel = ["Please cancel or reschedule at least 24 hours before your appointment."]
    assert "24 hours" in extractive_answer("What if I don't show up?", only_cancel, embed=embed).text
    assert "24 hours" in extractive_answer("what happens if I bail on my appointment?", policy, embed=embed).text
    deposits = [("Deposits\nServices of 80 dollars or more (colour and balayage) need a deposit of 20 dollars when "
                 "you book.")]
    for question in ("do I have to put money down to book a colour", "do I have to pay up front for a colour"):
        assert "20 dollars" in extractive_answer(question, deposits, embed=embed).text, question


def test_payment_by_phone_and_credit_cards_are_answered_by_the_names_of_wallets_and_cards(embed):
    assert "Apple Pay" in extractive_answer("can I pay with my phone", [PAYMENT], embed=embed).text
    assert "Visa" in extractive_answer("which credit cards can I use", [PAYMENT], embed=embed).text
    cards_only = ["Payment\nWe take all major cards and cash. Service is not included."]
    assert extractive_answer("can I pay with my phone", cards_only, embed=embed) is None
    for passages in ([PAYMENT], cards_only):
        assert extractive_answer("can I pay with bitcoin", passages, embed=embed) is None
    gift = ["Gift cards are sold in any amount from 20 dollars, at the reception or on our website."]
    assert "20 dollars" in extractive_answer("What is the minimum amount for a gift card?", gift, embed=embed).text


def test_a_listed_service_is_covered_by_a_policy_about_services(embed):
    """"my haircut" is "a service" when the passages list haircuts with a price; not a service they do not list."""
    answer = extractive_answer("Can I get a refund if I don't like my haircut?", [PRICE_LIST, REFUNDS], embed=embed)
    assert "7 days" in answer.text
    nails = extractive_answer("I got my nails done and hate them, can I get my money back", [REFUNDS, NAILS],
                              embed=embed)
    assert "7 days" in nails.text
    assert extractive_answer("Can I get a refund if I don't like my haircut?", [REFUNDS], embed=embed) is None
    assert extractive_answer("Can I get a refund if I don't like my tattoo?", [PRICE_LIST, REFUNDS],
                             embed=embed) is None


def test_a_question_for_a_name_needs_a_name(embed):
    team = [("Our team\nThe salon is run by owner Maria Lopez, a master colourist. The team has four stylists, two "
             "nail technicians and one beautician.")]
    for question in ("What is the name of your nail technician?", "who is the nail technician", "What's your name?"):
        assert extractive_answer(question, team, embed=embed) is None, question
    assert "Maria Lopez" in extractive_answer("What's the name of the owner?", team, embed=embed).text
    assert "Maria Lopez" in extractive_answer("Who owns the salon?", team, embed=embed).text
    dentists = ["Our dentists\nDr. Priya Shah and Dr. Tom Becker are our general dentists."]
    assert extractive_answer("what's the name of the hygienist", dentists, embed=embed) is None
    assert "Priya Shah" in extractive_answer("who are your dentists?", dentists, embed=embed).text
