"""Answers from the documents' own words, or an honest "I don't have that information".

The bundled LLM (SmolLM2-135M) states a retrieved fact for about a third of
the questions and invents for the rest. ``extractive_answer`` answers without
it: the passage sentence (or list line) that answers the question, shortened
to what was asked and lightly turned into speech ("Gel manicure: 35 dollars"
-> "A gel manicure is 35 dollars."), or ``None`` when no passage answers, so
the caller hears ``dont_know()`` instead of a guess.

The hard part is *answerability*: the sentence closest to the question is not
always an answer. "Do you do lash extensions?" / "Lash extensions are not
offered." is one; "How much is a child's check-up?" / a price list without
children is not. A sentence answers when

- it covers the question's key words (stemmed, with light synonyms: kids =
  children = son, trim = cut, dye = colour, ...), counting its heading and the
  passage's first sentence (what a price list line is about); at most one key
  word may be missing, only when at least two others are there, the meaning is
  close, the missing word is related to the sentence and the question is not
  closer to it without that word ("Is gel polish vegan?" is no question about
  "Gel polish costs 35 dollars"); a capitalised name in the question
  ("Brazilian wax") must be there;
- it holds the kind of fact asked for: a price for "how much", a time or day
  for "when"/"what time"/"till when", a duration for "how long", a phone number
  for "what's your number", an e-mail address for "e-mail", a place for "where",
  a name for "what's the name of ..."/"who is the ..." (the role itself, no
  synonym: a hygienist is no dentist);
- and its meaning is close enough (all-MiniLM-L6-v2 cosine, when ``embed`` is
  given; without it the lexical test alone decides, more strictly).

Callers' wording: fillers ("yo", "you guys", "somewhere", "gonna") are no key
words; spoken phrases stand for the documents' words ("bail on" = cancel, "put
money down" = deposit, "money back" = refund, "pay with my phone" = Apple Pay,
Google Pay..., "during the week" = Monday to Friday, "a back rub" = back
massage). Some words are answered one way only ("credit cards" by "Visa", a
"minimum" by "from 20 dollars", a no-show by the cancellation terms), and a
sentence that names the key word itself beats one that answers it only that
way. A service the passages list with a price ("Men's classic haircut: 30
dollars") is also covered, one way, by a policy about "services" ("If you are
not happy with a service..."), never a service they do not list. The meaning
decides *which* acceptable sentence is said, never *whether* one is: a word
alone is as close to a sentence that lacks it ("bitcoin" to a list of payment
methods) as a real synonym ("phone" to "Apple Pay"), so that stays lexical.
Among list lines the one whose item is what was asked wins: "a guy's cut" is
"Men's classic haircut", not "Beard trim, added to a men's cut".

Only the sentences that pass the lexical test are embedded (at most 12, cached
between questions), so an answer costs one question embedding and a few
sentence embeddings: a few milliseconds.

What is said: the sentence (or the clause of a long one that holds the fact
asked for), with the sentence before it when it starts with "It"/"They", or the
passage's first sentence when that is where a key word was; a second sentence
of the same passage when it answers about as well. Give it the retrieved chunks
(``knowledge.search`` passages, titles in front when known) rather than single
sentences: the neighbours are what tells "Gel polish ... 35 dollars" is about
manicures.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pipelines.dialogue.grounding import TENS, UNITS, WEEKDAYS, day_mentions, facts, normalise_word, stem

_I = re.IGNORECASE

__all__ = ["Answer", "dont_know", "extractive_answer", "spoken"]

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Answer:
    text: str  # what to say (spoken form)
    source: str  # the passage sentence or line it came from
    score: float  # how well it answers the question (0-1)


# --- thresholds (tuned on tests/dialogue/data/salon_answers.json; see the README) -----------------

MIN_SIMILARITY = 0.15  # every key word covered
MIN_SIMILARITY_ONE_MISSING = 0.33  # one key word missing, at least two covered
MISSING_WORD_RELATED = 0.10  # ... the missing word alone is this close to the sentence ("phone" ~ "Apple Pay")
MISSING_WORD_PULL = 0.02  # ... and the question without it is not closer to the sentence than this
MIN_SIMILARITY_NO_KEYS = 0.40  # the question has no key word and asks for no kind of fact
MIN_SIMILARITY_KIND_ONLY = 0.30  # no key word, a kind of fact ("what are your opening hours?")
MIN_SIMILARITY_STRONG = 0.10  # ... and the sentence holds that fact outright (a street address for "where are you?")
STRONG_BONUS = 0.15  # added to the score of such a sentence
SPECIFICITY_PENALTY = 0.15  # taken off a list line's score, times the share of its item words not asked about
SECOND_SENTENCE_RATIO = 0.92  # a second sentence is added when it scores this close to the first
MAX_WORDS = 20  # a longer sentence is cut to the clause that answers
MAX_CANDIDATES = 12  # sentences embedded per question, at most

# --- words -----------------------------------------------------------------------------------------

# Words a question is made of that say nothing about what is asked for.
QUESTION_FILLER = frozenset("""
a about above after again all also am an and another any anybody anyone anything are aren't around as ask
at available back be been being best bit both bring but buy by can can't could couldn't currently dear did
didn't do does doesn't doing don't done down each either else even ever every exactly few find for from get
gets getting give go goes going good got had has have having he hello help her here hey hi him his hold
how i i'd i'll i'm i've if in into is isn't it it's its just keep kind kindly know let like likely look
looking lot make many may maybe me mean might mine more most much must my myself need needs new no nor not
now of off offer offers offering ok okay on one only onto or other our out over own perhaps place please
possible pretty probably provide quick quite rather really right same say see sell sells selling service
services set she should simple so some someone something sometimes soon sort still such sure take tell than
thank thanks that that's the their them then there there's these they thing things think this those though
to today too type up us use using usual usually very want wanted wanting was way we well were what what's
whatever when where where's whether which while who whom whose why will wish with without wonder wondering
would wouldn't yes yet you you're your yours ordinary normal standard basic general particular
special salon clinic shop store business company office practice centre center policy policies treatment
treatments procedure procedures option options information info detail details leave happen happens wait
cover come comes came coming add added adding always never often sometimes today tomorrow tonight
yesterday morning afternoon evening later work works working night tonight terrible awful horrible severe
serious really big huge
yo um uh uhm er erm hmm oh ah gonna wanna gotta kinda sorta lemme gimme dude bro mate ya yeah yep yup nope alright
somewhere anywhere someplace anyplace during till until til stuff basically actually honestly literally anyway
uses seen sees
""".split())
# Casual speech ("yo", "you guys", "gonna") is in QUESTION_FILLER and PHRASES: a caller's filler must not
# become a key word that no sentence covers.

# Phrases said for one word (before the key words are picked).
PHRASES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"\bjob\s+openings?\b|\bopenings?\s+for\s+(?:a\s+)?job\b", _I), "jobs"),
    (re.compile(r"\b(?:can'?t|cannot|can\s+not|won'?t\s+be\s+able\s+to)\s+make\s+it\b", _I), "cancel"),
    (re.compile(r"\b(?:don'?t|didn'?t|do\s+not|not)\s+show\s+up\b|\bno[\s-]shows?\b", _I), "noshow"),
    (re.compile(r"\brunning\s+late\b|\bbehind\s+schedule\b|\bstuck\s+in\s+traffic\b|\bheld\s+up\b", _I), "late"),
    (re.compile(r"\b(?:look\s+after|take\s+care\s+of|deal\s+with)\b", _I), "do"),
    (re.compile(r"\bhold\s+up\b", _I), "last"),
    (re.compile(r"\b(?:to\s+)?take\s+(?:it\s+|them\s+)?home\b", _I), ""),
    (re.compile(r"\bget\s+in(?:side)?\b", _I), "access"),
    (re.compile(r"\bwi[\s-]?fi\b", _I), "wifi"),
    (re.compile(r"\bcheck[\s-]ups?\b", _I), "checkup"),
    (re.compile(r"\bfirst\s+(?:visit|appointment|consultation)\b"
                r"|\bfirst\s+time\s+(?:here|with\s+you|coming|visiting|in|at)\b", _I), "firstvisit"),
    (re.compile(r"\bblow[\s-]?dry\b", _I), "blowdry"),
    # spoken ways to say what the documents say otherwise
    (re.compile(r"\byou\s+(?:guys|gals|folks|people|lot|all)\b|\by'?all\b", _I), "you"),
    (re.compile(r"\b(?:bail(?:ed|ing)?|back(?:ed|ing)?\s+out|call(?:ed|ing)?\s+(?:it\s+)?off)\b", _I), "cancel"),
    (re.compile(r"\b(?:don'?t|didn'?t|doesn'?t|do\s+not|did\s+not|not|never)\s+(?:just\s+)?turn\s+up\b", _I),
     "noshow"),
    (re.compile(r"\blast[\s-]minute\b", _I), "late"),
    (re.compile(r"\bit'?s\s+(?:really\s+|very\s+|so\s+|getting\s+)?late\b|\blate\s+at\s+night\b", _I), "night"),
    (re.compile(r"\bpick(?:ing|ed)?\s+(?:(?:it|them|my|the|your|our|his|her|a)\s+(?:\w+\s+)?)?up\b", _I), "collect"),
    (re.compile(r"\bmoney\s+back\b", _I), "refund"),
    (re.compile(r"\bput\s+(?:some\s+|any\s+)?money\s+down\b|\bdown[\s-]?payment\b"
                r"|\bpay\s+(?:\w+\s+)?(?:up[\s-]?front|in\s+advance)\b", _I), "deposit"),
    (re.compile(r"\b(?:don'?t|didn'?t|do\s+not|did\s+not)\s+(?:really\s+)?(?:like|love)\b", _I), "dislike"),
    (re.compile(r"\b(?:during|in|through(?:out)?)\s+the\s+week\b|\b(?:on\s+)?weekdays\b|\bmid-?week\b", _I),
     "weekday"),
    (re.compile(r"\b(pay(?:ing)?|payment)\s+(?:with|by|using|on|via|through)\s+(?:my\s+|a\s+|your\s+|the\s+)?"
                r"(?:phone|mobile|cell(?:\s*phone)?|smartphone|iphone|android|watch|smartwatch)\b", _I), r"\1 mobilepay"),
    # "a regular check-up": the standard one, not "regular clients"
    (re.compile(r"\b(a|an|the|your|my)\s+regular\s+(?!(?:customers?|clients?|patients?|guests?|visitors?|members?"
                r"|basis)\b)", _I), r"\1 "),
]

# Light synonyms: every word of a group stands for the others. Stems are taken at import.
SYNONYMS: list[tuple[str, ...]] = [
    ("kid", "kids", "child", "children", "childrens", "son", "daughter", "boy", "girl", "toddler", "baby", "babies",
     "junior", "juniors", "minor", "minors", "teen", "teenager", "youngster", "infant", "little"),
    ("man", "men", "mens", "gentleman", "gentlemen", "male", "guy", "gent", "gents"),
    ("woman", "women", "womens", "lady", "ladies", "female"),
    ("cut", "trim", "haircut", "haircuts", "trimmed", "cuts"),
    ("color", "colour", "dye", "dyed", "tint", "tinting", "colourist", "colorist", "coloring", "colouring", "blonde",
     "blond", "brunette", "highlights", "balayage", "ombre", "grey", "gray"),
    ("nail", "fingernail", "manicure", "mani", "manicurist", "polish"),
    ("gel", "shellac", "gelish"),
    ("foot", "feet", "toe", "toes", "toenail", "pedicure", "podiatrist", "podiatry", "chiropody", "chiropodist"),
    ("brow", "eyebrow"),
    ("lash", "eyelash"),
    ("face", "facial"),
    ("massage", "rub", "rubs", "rubdown", "masseuse", "masseur"),
    ("partner", "couple", "couples", "husband", "wife", "boyfriend", "girlfriend", "spouse"),
    ("book", "booking", "appointment", "appointments", "appt", "reserve", "reserving", "reservation", "slot",
     "schedule", "scheduling"),
    ("cancel", "cancellation", "cancelling", "canceling", "reschedule"),
    ("noshow", "noshows", "miss", "missed"),
    ("late", "delay", "delayed", "lateness", "behind", "arrive"),
    ("pay", "payment", "paying", "card", "cash", "contactless"),
    ("gift", "present", "voucher", "giftcard", "coupon"),
    ("discount", "reduced", "reduction", "cheaper", "deal", "concession", "promotion", "promo", "percent"),
    ("student", "university", "college", "uni", "pupil"),
    ("senior", "pensioner", "elderly", "retired", "retiree", "oap"),
    ("wedding", "bridal", "bride", "groom", "marriage"),
    ("clean", "hygiene", "hygienic", "sterile", "sterilised", "sterilized", "disinfected", "disinfect",
     "sanitised", "sanitized", "sanitary", "autoclave"),
    ("wheelchair", "accessible", "accessibility", "disabled", "disability", "stepfree", "ramp"),
    ("wifi", "internet", "wireless", "online"),
    ("drink", "coffee", "tea", "water", "refreshment", "refreshments", "beverage"),
    ("owner", "own", "owns", "owned", "founder", "proprietor", "run", "runs", "manager", "boss"),
    ("staff", "team", "employee", "employees", "worker", "workers", "people", "personnel", "stylist", "stylists"),
    ("job", "hiring", "hire", "career", "careers", "vacancy", "vacancies", "position", "recruiting", "apply", "cv",
     "resume", "apprentice"),
    ("refund", "refundable", "reimburse", "reimbursement"),
    ("fix", "correct", "redo", "repair", "adjust", "complaint", "unhappy", "happy", "wrong", "bad", "mistake",
     "dislike", "hate", "disappointed", "satisfied", "dissatisfied", "unsatisfied"),
    ("long", "longer", "length", "lengthen"),
    ("frizz", "frizzy", "smooth", "smooths", "smoothing", "straighten", "straightening"),
    ("allergy", "allergies", "allergic", "react", "reaction", "sensitive", "sensitivity", "hypoallergenic",
     "intolerance", "patch"),
    ("instrument", "tool", "tools", "equipment", "utensil", "implements"),
    ("regular", "regulars", "loyal", "loyalty", "frequent", "member", "members", "membership", "returning"),
    ("reward", "rewards", "points", "earn", "earns", "bonus", "perk"),
    ("dog", "dogs", "pet", "pets", "animal", "animals", "puppy"),
    ("car", "parking", "park", "vehicle", "garage", "spaces"),
    ("phone", "telephone", "mobile", "cell"),
    ("shampoo", "shampoos", "conditioner", "conditioners"),
    ("product", "products", "stock", "brand", "brands"),
    ("holiday", "holidays", "christmas", "easter", "thanksgiving"),
    ("party", "parties", "event", "events", "celebration", "celebrations", "function", "functions", "occasion"),
    # clinics and practices
    ("doctor", "physician", "gp", "practitioner", "clinician"),
    ("dentist", "dental", "teeth", "tooth", "dentistry", "hygienist"),
    ("checkup", "exam", "examination", "physical", "screening"),
    ("vaccine", "vaccination", "vaccinations", "shot", "jab", "immunisation", "immunization", "flu"),
    ("insurance", "insured", "insurer", "coverage", "medicare", "medicaid"),
    ("prescription", "refill", "medication", "medicine", "drug", "pharmacy"),
    ("emergency", "urgent", "urgently", "asap"),
    ("pain", "ache", "aching", "toothache", "hurt", "hurts", "sore", "painful"),
    ("brace", "braces", "orthodontic", "orthodontics", "orthodontist", "aligner", "aligners"),
    ("new", "first", "firstvisit"),
    ("xray", "scan", "imaging"),
    ("eye", "eyes", "vision", "optician", "optometrist", "glasses", "contacts"),
    # restaurants and shops
    ("menu", "dish", "dishes", "food", "meal", "meals"),
    ("vegetarian", "veggie", "vegan", "plantbased", "meatless"),
    ("gluten", "celiac", "coeliac", "glutenfree"),
    ("takeaway", "takeout", "delivery", "deliver", "delivers", "collection", "pickup", "collect", "collected"),
    ("yearly", "annual", "annually"),
    ("home", "house"),
    ("alcohol", "wine", "beer", "bar", "cocktail", "cocktails"),
    ("tire", "tyre", "tires", "tyres", "wheel", "wheels"),
    ("deposit", "downpayment", "prepayment"),
]
# One-way: a question word that is also answered by these ("weekend" by "Saturday").
EXPANSIONS = {
    "weekend": ("saturday", "sunday"), "weekday": WEEKDAYS[:5], "shellac": ("polish",),
    "paint": ("polish", "manicure"), "painted": ("polish", "manicure"),
    "blowdry": ("blow",), "style": ("styling",), "styled": ("styling",), "mother": ("gift",), "mom": ("gift",),
    "mum": ("gift",), "instalment": ("plan", "financing", "finance", "monthly"),
    "installment": ("plan", "financing", "finance", "monthly"), "finance": ("plan", "instalment"),
    # a no-show is answered by the cancellation terms when nothing names it
    "noshow": ("cancel", "cancellation"),
    # "do I have to pay" is answered by what is charged
    "pay": ("charge", "charged", "fee", "fees"),
    # the card brands are credit cards; "from 20 dollars" is the minimum
    "credit": ("visa", "mastercard", "amex", "maestro", "card"),
    "minimum": ("from", "least", "starting", "lowest"),
    # paying with a phone: the wallets' names
    "mobilepay": ("apple", "google", "samsung", "contactless", "nfc", "wallet", "mobile"),
}

_CONCEPTS: dict[str, set[str]] = {}  # a stem -> the stems of its synonym groups
for _group in SYNONYMS:
    _stems = {stem(normalise_word(w)) for w in _group}
    for _s in _stems:
        _CONCEPTS.setdefault(_s, set()).update(_stems)
_ONE_WAY: dict[str, set[str]] = {}  # a stem -> what also answers it (weaker: see _coverage)
for _word, _more in EXPANSIONS.items():
    _ONE_WAY.setdefault(stem(_word), set()).update(stem(normalise_word(w)) for w in _more)

# --- what kind of answer a question wants --------------------------------------------------------

_TYPE_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("phone", re.compile(r"\b(?:phone|telephone|mobile|contact|call)\s*(?:number|no\.?|#)"
                         r"|\bnumber\s+(?:to|can i|should i|do i)\s+call"
                         r"|\bwho\s+(?:do|should|can|could)\s+i\s+(?:call|ring|phone)\b"
                         r"|\bwhat(?:'s|\s+is)\s+(?:the|your)\s+(?:\w+\s+)?number\b"
                         r"|\bwhat\s+number\b|\bcall\s+you\s+(?:on|at)\b|\bfax\b", _I)),
    ("email", re.compile(r"\be-?mail\b", _I)),
    ("price", re.compile(r"\bhow\s+much\b(?!\s+(?:time|longer|notice|hair))"
                         r"|\b(?:price|prices|pricing|cost|costs|costing|charge|charges"
                         r"|fee|fees|rate|rates|tariff|expensive|cheap|afford|set\s+me\s+back|pay\s+for)\b", _I)),
    ("duration", re.compile(r"\bhow\s+long\b(?!\s+(?:ago|hair))"
                            r"|\bhow\s+many\s+(?:minutes|hours|days|weeks|months|years)\b"
                            r"|\bduration\b|\bvalid\s+for\b", _I)),
    ("hours", re.compile(r"\b(?:opening|business|office)\s+(?:hours|times)\b|\bwhat\s+time\b|\bhours\b"
                         r"|\b(?:are|is)\s+(?:you|the\s+\w+)\s+(?:open|closed|working)\b"
                         r"|\bwhen\s+(?:do|does|are|is)\s+(?:you|the\s+\w+)\s+(?:open|close|closed)\b"
                         r"|\b(?:open|closed)\s+(?:on|at|today|tomorrow|this|next)\b"
                         r"|\b(?:till|until|til)\s+(?:when|what\s+time)\b"
                         r"|\bopen\s+(?:on\s+)?(?:mon|tues|wednes|thurs|fri|satur|sun)days?\b"
                         r"|\b(?:are|is)\s+(?:you|the\s+\w+)\s+(?:around|there|in)\s+(?:on|at|today|tomorrow|this|next"
                         r"|during|in\s+the)\b", _I)),
    ("when", re.compile(r"\bwhen\b|\bwhat\s+(?:day|days|date)\b|\bwhich\s+(?:day|days|date)\b"
                        r"|\bhow\s+(?:early|soon|far\s+ahead"
                        r"|far\s+in\s+advance)\b", _I)),
    ("where", re.compile(r"\bwhere\b|\baddress\b|\blocat(?:ed|ion)\b|\bdirections\b|\bfind\s+you\b"
                         r"|\bget\s+(?:to\s+you|there)\b", _I)),
    ("where", re.compile(r"\bhow\s+far\b", _I)),
    ("name", re.compile(r"\bwhat(?:'s|\s+is|\s+are)\s+(?:the\s+)?names?\s+of\b|\b(?:his|her|their)\s+names?\b"
                        r"|\bwhat(?:'s|\s+is)\s+(?:the\s+|your\s+)?\w+(?:'s|s')\s+name\b"
                        r"|\bwho(?:'s|\s+is|\s+are)\s+(?:the|your|our)\s+(?!one\b|person\b|people\b)\w+", _I)),
    ("count", re.compile(r"\bhow\s+many\b", _I)),
    ("who", re.compile(r"\bwho\b", _I)),
]
# Words that only say which kind of answer is wanted; they are not key words.
_TYPE_WORDS = {
    "price": {"price", "prices", "pricing", "cost", "costs", "charge", "charges", "fee", "fees", "rate", "rates",
              "expensive", "cheap", "afford", "pay", "much", "dollar", "dollars", "money", "tariff", "back", "set"},
    "duration": {"long", "duration", "take", "takes", "last", "lasts", "hold", "minutes", "hours", "valid"},
    "hours": {"open", "opening", "close", "closing", "closed", "hours", "time", "times", "working", "work", "business",
              "start", "starts", "begin", "begins", "finish", "finishes", "end", "ends"},
    "when": {"when", "day", "days", "date", "early", "soon", "advance", "ahead"},
    "where": {"where", "located", "location", "directions", "find", "get", "there", "far"},
    "phone": {"phone", "telephone", "number", "call", "contact", "mobile", "fax", "ring"},
    "email": {"email", "e-mail", "mail", "address", "contact"},
    "count": {"many", "number"},
    "who": {"who"},
    "name": {"name", "names", "called"},
}
_PLACE = re.compile(r"\b(?:street|st\.|lane|road|rd\.|avenue|ave\.|boulevard|square|plaza|floor|building|station|suite|"
                    r"unit|block|near|next\s+to|opposite|behind|above|below|across|corner|entrance|on\s+foot|online|"
                    r"website|address|located|map|parking|garage|downtown|centre|center|miles?|kilomet(?:re|er)s?|km)\b"
                    r"|@|(?-i:\b\d+\s+[A-Z][a-z]+)", _I)
_ADDRESS = re.compile(r"\b\d{1,5}[a-z]?\s+(?:[A-Z][\w'-]*\s+){1,3}(?:Street|St\.?|Lane|Ln\.?|Road|Rd\.?|Avenue|Ave\.?|"
                      r"Boulevard|Blvd\.?|Drive|Dr\.?|Way|Place|Pl\.?|Square|Sq\.?|Court|Ct\.?|Terrace|Parkway|Highway"
                      r"|Hwy)\b")
_DURATION = re.compile(r"\b(?:minutes?|hours?|days?|weeks?|months?|years?|an?\s+hour|overnight)\b", _I)
_PRICE_WORDS = re.compile(r"\b(?:free|complimentary|no\s+charge|charged?|percent|discount|half\s+the\s+price|included|"
                          r"extra|deposit|fee)\b|%", _I)
_WHEN_WORDS = re.compile(r"\b(?:ahead|advance|before|after|within|during|every|weekends?|weekdays?|daily|morning|"
                         r"afternoon|"
                         r"evening|tomorrow|today|tonight|month|week|year)\b", _I)
_ROLE_WORDS = re.compile(r"\b(?:owner|owned|run\s+by|team|staff|manager|founder|doctor|dr\.?|stylists?|technicians?|"
                         r"therapists?|nurses?|dentists?)\b", _I)


def _question_type(question: str) -> str:
    for kind, pattern in _TYPE_PATTERNS:
        if pattern.search(question):
            return kind
    return ""


def _strong(kind: str, text: str, found: list) -> bool:
    """The sentence holds the very fact asked for: an address, a phone number, an e-mail, opening times."""
    kinds = {f.kind for f in found}
    if kind == "where":
        return bool(_ADDRESS.search(text))
    if kind in ("phone", "email"):
        return kind in kinds
    if kind == "hours":
        return "time" in kinds and bool(day_mentions(text))
    return False


def _satisfies(kind: str, text: str, found: list) -> bool:
    kinds = {f.kind for f in found}
    if not kind:
        return True
    if kind == "phone":
        return "phone" in kinds
    if kind == "email":
        return "email" in kinds
    if kind == "price":
        return "price" in kinds or bool(_PRICE_WORDS.search(text))
    if kind == "duration":
        return bool(_DURATION.search(text)) and (
            "number" in kinds or bool(re.search(r"\ban?\s+(?:hour|day|week|month|year)", text, _I)))
    if kind == "hours":
        return "time" in kinds or bool(re.search(r"\b(?:open|opens|closed|closes)\b", text, _I)) and (
            "date" in kinds or bool(day_mentions(text)))
    if kind == "when":
        return bool(kinds & {"time", "date"}) or bool(day_mentions(text)) or bool(_WHEN_WORDS.search(text))
    if kind == "where":
        return bool(_PLACE.search(text)) or "email" in kinds
    if kind == "count":
        return "number" in kinds or "price" in kinds
    if kind == "who":
        return "name" in kinds or bool(_ROLE_WORDS.search(text))
    if kind == "name":  # "the name of your nail technician": a name, not "two nail technicians"
        return "name" in kinds
    return True


# --- the question's key words ----------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*(?:-[^\W\d_]+)*|\d+", re.UNICODE)


@dataclass(frozen=True)
class _Question:
    text: str
    kind: str
    keys: tuple[str, ...]  # stems of the key words, in order
    names: tuple[str, ...]  # capitalised words that must be found (normalised)


def _analyse(question: str) -> _Question:
    kind = _question_type(question)
    for pattern, replacement in PHRASES:
        question = pattern.sub(replacement, question)
    type_words = _TYPE_WORDS.get(kind, set())
    keys: list[str] = []
    names: list[str] = []
    tokens = list(_TOKEN.finditer(question))
    for i, m in enumerate(tokens):
        raw = m.group()
        low = raw.lower().replace("’", "'")
        word = normalise_word(raw)
        body_part = low == "back" and i > 0 and tokens[i - 1].group().lower() in _BODY_DETERMINERS  # "a back rub"
        if (low in QUESTION_FILLER or word in QUESTION_FILLER or low in type_words or word in type_words) \
                and not body_part:
            continue
        if word.isdigit() or word in _NUMBER_WORDS or low.endswith(("-old", "-olds")):  # "eight-year-old"
            continue
        if len(word) < 2 or (word.endswith("ly") and len(word) > 4 and word not in _LY_NOUNS):
            continue  # "badly", "really", "quickly": how, not what
        s = stem(word)
        if s in keys:
            continue
        keys.append(s)
        if raw[0].isupper() and i > 0 and not raw.isupper() and word not in WEEKDAYS and word not in _MONTHS:
            prev_end = tokens[i - 1].end()
            if not re.search(r"[.!?]\s*$", question[:m.start()]) and prev_end < m.start():
                names.append(word)
    return _Question(question, kind, tuple(keys), tuple(names))


_BODY_DETERMINERS = {"a", "my", "the", "your", "his", "her", "our", "lower", "upper", "sore", "bad"}
_LY_NOUNS = {"family", "jelly", "belly", "lily", "ally", "rally", "bully", "holly", "italy", "july", "assembly",
             "supply", "reply", "monthly", "weekly", "daily", "yearly", "early", "fly", "butterfly", "anomaly"}
_NUMBER_WORDS = set(UNITS) | set(TENS) | {"hundred", "thousand", "dozen", "half", "quarter"}
_MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"}


def _stems_of(text: str) -> set[str]:
    out = set()
    for w in _TOKEN.findall(text):
        out.add(stem(normalise_word(w)))
        if "-" in w:  # "sensitive-skin": "sensitiveskin", "sensitive" and "skin"
            out.update(stem(normalise_word(part)) for part in w.split("-") if len(part) > 1)
    if "%" in text:
        out.add("percent")
    for _, days in day_mentions(text):
        out.update(days)
    return out


def _coverage(key: str, stems: set[str], exact: bool = False) -> int:
    """2: ``stems`` name the key word itself (its stem, a synonym, a longer or shorter form);
    1: only something that answers it one way ("Saturday" for "weekend", "cancel" for a no-show);
    0: neither. ``exact``: no synonyms, nothing one way (who someone is: a hygienist is no dentist)."""
    if key in stems:
        return 2
    related = None if exact else _CONCEPTS.get(key)
    if related and related & stems:
        return 2
    if len(key) >= 4:  # "frizzy" ~ "frizz", "colorist" ~ "color"
        for s in stems:
            if len(s) >= 4 and (s.startswith(key) or key.startswith(s)) and abs(len(s) - len(key)) <= 4:
                return 2
    more = None if exact else _ONE_WAY.get(key)
    if more and more & stems:
        return 1
    return 0


def _covers(key: str, stems: set[str]) -> bool:
    return _coverage(key, stems) > 0


# --- passages -> units ---------------------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bSt\.)(?<!\bNo\.)(?<!\bMrs\.)(?<!\bProf\.)"
                       r"(?<!\bapprox\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bvs\.)(?<!\betc\.)\s+(?=[A-Z0-9\"'(])")
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+(?P<h>.+?)\s*#*\s*$|\*\*(?P<b>[^*]{2,80})\*\*:?\s*$"
                      r"|(?P<c>[A-Z][^.!?:]{1,60}):\s*$)")
# A short line without a full stop before the text ("Opening hours"): a heading.
_BARE_HEADING = re.compile(r"[A-Z][\w'’&/ -]{1,48}[\w)]")
_BULLET = re.compile(r"^\s*(?:[-*+•·–—]|\d{1,2}[.)]|[a-z][.)])\s+")
_PRONOUN_START = re.compile(r"^(?:it|they|this|these|that|those|he|she|its|their|there)\b", _I)


@dataclass
class _Unit:
    text: str  # cleaned, as written
    heading: str
    passage: int
    index: int  # position in the passage
    prev: str  # the sentence before it in the passage ("" for none)
    around: str = ""  # the passage's first sentence (what the sentence is about, when it does not say)


def _clean_inline(text: str) -> str:
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)  # images
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links
    text = re.sub(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1", r"\2", text)  # emphasis, code
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _units(passages: Sequence[str]) -> list[_Unit]:
    units: list[_Unit] = []
    seen: set[str] = set()
    for p_index, passage in enumerate(passages):
        heading = ""
        prev = ""
        index = 0
        lines = [line for line in (passage or "").splitlines() if line.strip()]
        first_unit = len(units)
        for number, line in enumerate(lines):
            head = _HEADING.match(line)
            if not head and number + 1 < len(lines) and _BARE_HEADING.fullmatch(line.strip()):
                head = re.match(r"\s*(?P<c>.+?)\s*$", line)
            if head:
                groups = head.groupdict()
                heading = _clean_inline(groups.get("h") or groups.get("b") or groups.get("c") or "")
                prev = ""
                continue
            if re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", line):
                continue  # table rule
            if line.count("|") >= 2:
                cells = [_clean_inline(c) for c in line.strip().strip("|").split("|")]
                cells = [c for c in cells if c]
                if len(cells) >= 2:
                    line = f"{cells[0]}: {', '.join(cells[1:])}"
            line = _BULLET.sub("", line)
            line = _clean_inline(line)
            pieces: list[str] = []
            for piece in _SENTENCE.split(line):
                if pieces and len(piece.split()) <= 2 and not re.search(r"\d", piece):
                    pieces[-1] += " " + piece  # "... 9 a.m. Monday." is one sentence
                else:
                    pieces.append(piece)
            for sentence in pieces:
                sentence = sentence.strip()
                if len(sentence) < 3 or sentence in seen:
                    continue
                seen.add(sentence)
                units.append(_Unit(sentence, heading, p_index, index, prev))
                prev = sentence
                index += 1
        # What the passage is about: its heading and its first sentence -- not the first item of a list
        # ("Classic manicure: 25 dollars" is no more what the nail prices are about than "Gel manicure: 35").
        own_units = units[first_unit:]
        topic = own_units[0].text if own_units else ""
        if len(own_units) > 1 and all(_LABEL_VALUE.fullmatch(u.text) for u in own_units[:2]):
            topic = ""
        for unit in units[first_unit:]:
            unit.around = topic
    return units


# --- speech --------------------------------------------------------------------------------------------

_CURRENCY = {"$": "dollars", "€": "euros", "£": "pounds"}
_MASS_NOUNS = {"parking", "wifi", "wi-fi", "coffee", "tea", "water", "hair", "information", "advice", "insurance",
               "payment", "delivery", "entry", "admission", "shipping", "postage", "access", "food", "staff", "help"}
_GENERIC_LABELS = {"price", "prices", "cost", "fee", "fees", "duration", "time", "length", "rate", "charge", "when",
                   "where", "note", "notes", "availability", "hours", "details"}
_COPULA = re.compile(r"\b(?:is|are|was|were|costs?|takes?|includes?|starts?|lasts?|can|will|has|have|offers?|gets?|"
                     r"earns?|opens?|closes?|accepts?|requires?|needs?|pays?|receives?|runs?|must|should|may|stays?"
                     r"|comes?)\b", _I)


def _say_amount(m: re.Match) -> str:
    """ "$45" -> "45 dollars", "$4.50" -> "4 dollars 50"."""
    cents = m.group(3)
    return f"{m.group(2)} {_CURRENCY[m.group(1)]}" + (f" {int(cents)}" if cents and cents != "00" else "")


def spoken(text: str) -> str:
    """``text`` as it should be said: no markdown, "$45" -> "45 dollars", "%" -> "percent", "9am" -> "9 am"."""
    text = _clean_inline(text)
    text = re.sub(r"([$€£])\s?(\d+(?:,\d{3})*)(?:\.(\d{2}))?\b", _say_amount, text)
    text = re.sub(r"(\d)\s?%", r"\1 percent", text)
    text = re.sub(r"\b(\d{1,2}(?::\d{2})?)(am|pm)\b", r"\1 \2", text, flags=_I)
    text = re.sub(r"(?<![\d-])\b(\d{1,2}(?::\d{2})?\s?(?:am|pm)?)\s?[-–—]\s?(\d{1,2}(?::\d{2})?)(?![\d-])",
                  r"\1 to \2", text, flags=_I)  # "9-5" -> "9 to 5"
    text = re.sub(r"\s&\s", " and ", text)
    text = re.sub(r"\be\.g\.,?\s", "for example ", text)
    text = re.sub(r"\bi\.e\.,?\s", "that is ", text)
    if text.count("(") == 1 and not re.search(r"\(\d{3}\)", text):  # "(tax included)": an aside, not "(212)"
        text = re.sub(r"\s*\(([^)]*)\)", r", \1,", text)
    text = re.sub(r",\s*([.!?])", r"\1", text)
    text = re.sub(r"\s+", " ", text).strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text[0].upper() + text[1:] if text else text


# "Label: value" (a list line). The colon of a clock time ("from 7:30 am") is not one.
_LABEL_VALUE = re.compile(r"(?P<label>(?:[^:]|(?<=\d):(?=\d)){2,60}?)\s*(?:(?<!\d):|:(?!\d)|\s[–—-]\s)\s*(?P<value>.+)")


def _list_line(text: str, heading: str) -> str | None:
    """ "Gel manicure: 35 dollars" -> "A gel manicure is 35 dollars."; "Full-body massage, 60 minutes: 70
    dollars" -> "A full-body massage, 60 minutes, is 70 dollars." (None if not a label: value line)."""
    m = _LABEL_VALUE.fullmatch(text)
    if not m or len(m.group("value").split()) > 20:
        return None
    label, value = m.group("label").strip(), m.group("value").strip().rstrip(".")
    head, comma, rest = label.partition(", ")
    # The item, then what qualifies it: the verb agrees with the item ("massage ... is", not "minutes are").
    if comma and head and rest and not day_mentions(label) and label.lower() not in _GENERIC_LABELS \
            and (not head[0].islower() or heading):
        return f"{_noun_phrase(head, capital=True)}, {rest}, {'are' if _plural(head) else 'is'} {value}."
    if not label or label[0].islower() and not heading:
        return None
    low_label = label.lower()
    if day_mentions(label) and low_label.split()[0].rstrip("s") in WEEKDAYS:
        return f"{label}, {value}."
    if low_label in _GENERIC_LABELS:
        if heading:
            return f"For {_noun_phrase(heading)}, the {low_label} is {value}."
        return f"The {low_label} {'are' if _plural(label) else 'is'} {value}."
    return f"{_noun_phrase(label, capital=True)} {'are' if _plural(label) else 'is'} {value}."


def _plural(label: str) -> bool:
    last = label.split()[-1].lower()
    return last.endswith("s") and not last.endswith(("ss", "us", "is", "'s"))


def _noun_phrase(label: str, capital: bool = False) -> str:
    words_ = label.split()
    first = words_[0]
    if len(first) > 1 and first[1:].islower() and not (len(words_) > 1 and words_[1][:1].isupper()):
        words_[0] = first.lower()
    phrase = " ".join(words_)
    low = phrase.lower()
    if re.match(r"(?:the|a|an|our|your|each|every|all|any|some|no)\b", low) or _plural(phrase) or low in _MASS_NOUNS \
            or low.endswith("ing") or words_[0][:1].isupper():
        out = phrase
    else:
        article = "an" if re.match(r"(?:[aeio]|u(?!ni|se|su)|hour|honest)", low) else "a"
        out = f"{article} {phrase}"
    return out[0].upper() + out[1:] if capital else out


def _clauses(sentence: str) -> list[str]:
    parts = re.split(r"\s*;\s*|,\s+(?:and|but|while|whereas)\s+"
                     r"|,\s+(?=[a-z][^,]{3,}\b(?:is|are|costs?|takes?|starts?)\b)", sentence)
    return [p.strip(" ,") for p in parts if p and p.strip(" ,")]


# --- the answer -------------------------------------------------------------------------------------------


class _VectorCache:
    """Embeddings of passage sentences, kept between questions (a call asks about the same passages).

    Keyed by the embedder (its object, pinned here so that its id is not reused) and the text.
    """

    def __init__(self, size: int = 4096):
        self.size = size
        self.vectors: OrderedDict[tuple[int, int, str], np.ndarray] = OrderedDict()
        self.owners: dict[tuple[int, int], object] = {}
        self.lock = threading.Lock()

    def _embedder(self, embed: Embed) -> tuple[int, int]:
        owner = getattr(embed, "__self__", None)  # a bound method is a new object each time: key on its object
        func = getattr(embed, "__func__", embed)
        key = (id(owner) if owner is not None else id(embed), id(func))
        if key not in self.owners:
            if len(self.owners) >= 8:
                self.owners.clear()
                self.vectors.clear()
            self.owners[key] = (owner, func)
        return key

    def get(self, embed: Embed, texts: list[str]) -> np.ndarray:
        with self.lock:
            key = self._embedder(embed)
            missing = [t for t in dict.fromkeys(texts) if (*key, t) not in self.vectors]
        if missing:
            vectors = np.asarray(embed(missing), dtype=np.float32)
        with self.lock:
            for text, vector in zip(missing, vectors if missing else [], strict=True):
                self.vectors[(*key, text)] = vector
            out = []
            for t in texts:
                vector = self.vectors.get((*key, t))
                if vector is None:  # evicted meanwhile by another call
                    vector = np.asarray(embed([t]), dtype=np.float32)[0]
                    self.vectors[(*key, t)] = vector
                self.vectors.move_to_end((*key, t))
                out.append(vector)
            while len(self.vectors) > self.size:
                self.vectors.popitem(last=False)
        return np.stack(out)

    def clear(self) -> None:
        with self.lock:
            self.vectors.clear()
            self.owners.clear()


_CACHE = _VectorCache()


@dataclass
class _Candidate:
    unit: _Unit
    text: str  # the part that answers (a clause, or the sentence)
    covered: int
    missing: int
    lexical: float
    similarity: float = 0.0
    topic: bool = False  # a key word is only in the passage's first sentence: say that first
    strong: bool = False  # holds the very kind of fact asked for (an address, a phone number, opening times)
    part: int = 0  # 0: the whole sentence; 1, 2...: its clauses in order
    absent: tuple[str, ...] = ()  # the question's key words it lacks
    named: frozenset[str] = frozenset()  # key words the text itself names (or a synonym)
    one_way: frozenset[str] = frozenset()  # key words the text only answers one way ("cancel" for a no-show)
    extra: float = 0.0  # share of a list line's item words the question does not ask about

    @property
    def score(self) -> float:
        return (0.6 * self.similarity + 0.4 * self.lexical + (STRONG_BONUS if self.strong else 0.0)
                - SPECIFICITY_PENALTY * self.extra)


# Words of a list line's item that say it is the plain one ("Classic manicure" for "a manicure").
_DEFAULT_MODIFIERS = {"classic", "standard", "regular", "basic", "simple", "normal", "plain", "ordinary", "usual",
                      "traditional", "original"}


def _extra_share(q: _Question, text: str) -> float:
    """How much of a list line's item ("Beard trim, added to a men's cut: 12 dollars" -> "Beard trim") is
    not what the question asks about: "a guy's cut" is "Men's classic haircut" (nothing more), not the beard
    trim; "nails with gel polish" is "Gel manicure", not "Removal of old gel polish". 0 for other sentences."""
    if not q.keys:
        return 0.0
    m = _LABEL_VALUE.fullmatch(text)
    if not m:
        return 0.0
    head = re.split(r",|\(|\s[–—-]\s", m.group("label"))[0]
    type_words = _TYPE_WORDS.get(q.kind, set())
    words_ = []
    for raw in _TOKEN.findall(head):
        word = normalise_word(raw)
        if (len(word) < 2 or word.isdigit() or word in QUESTION_FILLER or raw.lower() in QUESTION_FILLER
                or word in _NUMBER_WORDS or word in _DEFAULT_MODIFIERS or word in type_words):
            continue
        words_.append(stem(word))
    if not words_:
        return 0.0
    extra = [w for w in words_ if not any(_covers(k, {w}) for k in q.keys)]
    return len(extra) / len(words_)


def _lexical(q: _Question, text: str, unit: _Unit, offered: frozenset[str] = frozenset()
             ) -> tuple[int, tuple[str, ...], float, bool, tuple[frozenset[str], frozenset[str]]] | None:
    """(covered, missing key words, share, topic needed, (named, one way)) of the question's key words in
    ``text``.

    A key word counts as covered when it is in the text itself (with the sentence before, when
    the text starts with a pronoun), in the heading, or in the passage's first sentence; at least
    one must be in the text or heading. "Topic needed": one is not in the text but in the first
    sentence, so that sentence is said first. "Named": the key words the text itself names (or a
    synonym); "one way": those it only answers one way ("cancel" for a no-show). A service the
    passages list (``offered``: "haircut" from "Men's classic haircut: 30 dollars") is also covered
    by a sentence about "services" or "treatments" ("If you are not happy with a service...").
    None when a name of the question is not there.
    """
    own_text = f"{text} {unit.prev}" if _PRONOUN_START.match(text) and unit.prev else text
    own = _stems_of(own_text)
    if _ADDRESS.search(text):
        own.add("address")
    near = own | _stems_of(unit.heading)
    topic = _stems_of(unit.around)
    around = near | topic
    if q.names:
        plain = {normalise_word(w) for w in _TOKEN.findall(f"{own_text} {unit.heading} {unit.around}")}
        if any(name not in plain and stem(name) not in around for name in q.names):
            return None
    exact = q.kind in ("name",)  # "the name of the hygienist": the hygienist, not "our general dentists"
    generic = bool(own & _GENERIC_SERVICE)

    direct = sum(1 for k in q.keys if _coverage(k, near, exact=exact))
    if q.keys and not direct:
        return 0, q.keys, 0.0, False, (frozenset(), frozenset())
    # A listed service is "a service" only besides a key word the text has itself (direct, above).
    covered = [k for k in q.keys if _coverage(k, around, exact=exact) or (generic and k in offered)]
    needs_topic = any(not _covers(k, own) and _covers(k, topic) for k in covered)
    share = (direct + len(covered)) / (2 * len(q.keys)) if q.keys else 0.0
    own_levels = {k: _coverage(k, own, exact=exact) for k in covered}
    named = frozenset(k for k, v in own_levels.items() if v == 2)
    one_way = frozenset(k for k, v in own_levels.items() if v == 1)
    return len(covered), tuple(k for k in q.keys if k not in covered), share, needs_topic, (named, one_way)


# Words that stand for any of the services a business lists.
_GENERIC_SERVICE = {stem(w) for w in ("service", "services", "treatment", "treatments", "procedure", "procedures",
                                      "session", "sessions")}


def _offered(q: _Question, units: list[_Unit]) -> frozenset[str]:
    """The question's key words that name a service the passages list with a price or a duration
    ("Men's classic haircut: 30 dollars"): what "a service" in a policy sentence may stand for."""
    found = set()
    for unit in units:
        label = _priced_label(unit.text)
        if label:
            found.update(k for k in q.keys if _coverage(k, label) == 2)
    return frozenset(found)


@lru_cache(maxsize=4096)
def _priced_label(text: str) -> frozenset[str]:
    """The stems of a list line's label when its value is a price or a duration (else empty)."""
    m = _LABEL_VALUE.fullmatch(text)
    if not m or not (_DURATION.search(m.group("value")) or any(f.kind == "price" for f in facts(m.group("value")))):
        return frozenset()
    return frozenset(_stems_of(m.group("label")))


def _acceptable(c: _Candidate, q: _Question, semantic: bool) -> bool:
    if not q.keys:  # "what's your address?": the kind of fact asked for, and the meaning
        if q.kind == "name":  # "what's your name?": the name of what, the documents cannot tell
            return False
        if not semantic:  # without meaning: only a specific kind, from the best ranked passage
            return q.kind in ("hours", "where", "phone", "email") and c.unit.passage == 0
        if c.strong:
            return c.similarity >= MIN_SIMILARITY_STRONG
        return c.similarity >= (MIN_SIMILARITY_KIND_ONLY if q.kind else MIN_SIMILARITY_NO_KEYS)
    if c.missing == 0:
        return c.similarity >= MIN_SIMILARITY if semantic else True
    if c.missing == 1 and c.covered >= 2:
        return c.similarity >= MIN_SIMILARITY_ONE_MISSING if semantic else c.covered >= 3
    return False


def _without_pulling_words(question: str, accepted: list[_Candidate], embed: Embed) -> list[_Candidate]:
    """Drop the sentences that lack a key word the meaning depends on.

    A sentence may miss one key word of the question ("Can I pay with my *phone* or a card?" /
    "We accept cash, cards, Apple Pay and Google Pay"), but only one it is related to in meaning
    (the word alone against the sentence), and not one that pulls the question away from it ("Is
    gel polish *vegan*?" is closer to "Gel polish costs 35 dollars" without "vegan"). Two small
    embeddings per missing word, for the few sentences that miss one.
    """
    missing = list(dict.fromkeys(c.absent[0] for c in accepted if c.missing == 1))[:2]
    if not missing:
        return accepted
    tokens = re.findall(r"[^\s]+", question)
    said, reduced = [], []
    for word in missing:
        kept = [t for t in tokens if stem(normalise_word(re.sub(r"[^\w'’-]", "", t))) != word]
        said.append(next((re.sub(r"[^\w'’-]", "", t) for t in tokens
                          if stem(normalise_word(re.sub(r"[^\w'’-]", "", t))) == word), word))
        reduced.append(" ".join(kept))
    vectors = np.asarray(embed(said + reduced), dtype=np.float32)
    dropped = set()
    for i, word in enumerate(missing):
        word_vector, reduced_vector = vectors[i], vectors[len(missing) + i]
        for c in accepted:
            if c.missing == 1 and c.absent[0] == word:
                sentence = _CACHE.get(embed, [c.text])[0]
                if float(sentence @ word_vector) < MISSING_WORD_RELATED or (
                        float(sentence @ reduced_vector) - c.similarity > MISSING_WORD_PULL):
                    dropped.add(id(c))
    return [c for c in accepted if id(c) not in dropped]


def extractive_answer(question: str, passages: list[str], *, embed: Embed | None = None) -> Answer | None:
    """Answer from the passages' own words, shortened to what was asked, lightly turned into
    speech (list lines like "Gel manicure: 35 dollars" -> "A gel manicure is 35 dollars.";
    markdown, bullets and headings removed; one or two sentences; a long sentence cut to the
    clause that answers). None when no passage answers the question: the caller then hears an
    honest "I don't have that information" (``dont_know``) instead of a guess."""
    if not question or not question.strip() or not passages:
        return None
    q = _analyse(question)
    units = _units(passages)
    offered = _offered(q, units)
    candidates: list[_Candidate] = []
    for unit in units:
        texts = [unit.text]
        if len(unit.text.split()) > MAX_WORDS and q.kind:  # a fact asked for: the clause that holds it
            texts += [c for c in _clauses(unit.text) if len(c.split()) >= 4 and _COPULA.search(c)]
        for part, text in enumerate(texts):
            found = facts(text)
            context_ok = _satisfies(q.kind, text, found)
            if not context_ok and text is unit.text and _PRONOUN_START.match(text) and unit.prev:
                context_ok = _satisfies(q.kind, unit.prev, facts(unit.prev)) and q.kind in ("duration", "price", "when")
            if not context_ok:
                continue
            lexical = _lexical(q, text, unit, offered)
            if lexical is None:
                continue
            covered, missing, share, topic, (named, one_way) = lexical
            if q.keys and covered == 0:
                continue  # not one key word of the question: not about what was asked
            candidates.append(_Candidate(unit, text, covered, len(missing), share, topic=topic, absent=missing,
                                         strong=_strong(q.kind, text, found), part=part, named=named,
                                         one_way=one_way, extra=_extra_share(q, text)))
    if not candidates:
        return None
    # The best covered first; among equals, the retrieval's order.
    candidates.sort(key=lambda c: (-c.covered, c.missing, c.unit.passage, c.unit.index, c.part))
    candidates = candidates[: MAX_CANDIDATES * 2]
    semantic = embed is not None
    if semantic:
        sentences = list(dict.fromkeys(c.text for c in candidates))[:MAX_CANDIDATES]
        candidates = [c for c in candidates if c.text in sentences]
        vectors = _CACHE.get(embed, sentences)
        q_vector = np.asarray(embed([question]), dtype=np.float32)[0]
        similarity = dict(zip(sentences, (vectors @ q_vector).tolist(), strict=True))
        for c in candidates:
            c.similarity = float(similarity[c.text])
    else:
        for c in candidates:
            c.similarity = c.lexical
    accepted = [c for c in candidates if _acceptable(c, q, semantic)]
    if semantic:
        accepted = _without_pulling_words(question, accepted, embed)
    # A sentence that names what was asked beats one that only answers it one way ("What if I don't show
    # up?": "Late cancellations and no-shows are charged..." rather than "Please cancel 24 hours before").
    accepted = [c for c in accepted
                if not any(o.covered >= c.covered and c.one_way & o.named for o in accepted)]
    if not accepted:
        return None
    accepted.sort(key=lambda c: (-round(c.score, 6), c.unit.passage, c.unit.index, c.part))
    best = accepted[0]
    # A clause wins over its own sentence only when it covers as many key words.
    whole = next((c for c in accepted if c.unit is best.unit and c.text == best.unit.text), None)
    if whole is not None and whole is not best and whole.covered > best.covered:
        best = whole
    lead = ""
    if _PRONOUN_START.match(best.text) and best.unit.prev:
        lead = best.unit.prev
    elif best.topic and best.unit.around and best.unit.around != best.unit.text:
        lead = best.unit.around
    if lead and len(lead.split()) + len(best.text.split()) <= 45:
        text = f"{_speak_unit(lead, best.unit.heading)} {_speak_unit(best.text, best.unit.heading)}"
    else:
        text = _speak_unit(best.text, best.unit.heading)
        for other in accepted[1:]:
            if other.unit is best.unit or other.unit.passage != best.unit.passage:
                continue
            if other.score < best.score * SECOND_SENTENCE_RATIO or _PRONOUN_START.match(other.text):
                continue
            if other.extra > best.extra:  # a list line about more than was asked ("Beard trim, added to...")
                continue
            if len(text.split()) + len(other.text.split()) > 40:
                continue
            first, second = sorted([best, other], key=lambda c: c.unit.index)
            text = f"{_speak_unit(first.text, first.unit.heading)} {_speak_unit(second.text, second.unit.heading)}"
            break
    score = max(0.0, min(1.0, best.score))
    return Answer(text=text, source=best.unit.text, score=round(score, 3))


def _speak_unit(text: str, heading: str) -> str:
    listed = _list_line(text, heading)
    return spoken(listed if listed else text)


def dont_know(*, fallback: str = "", can_transfer: bool = False) -> str:
    """An honest "I don't have that information" that offers what the bot can do: take a
    message, transfer the caller when it can, or answer something else."""
    first = (fallback or "").strip() or "I'm sorry, I don't have that information."
    if first[-1] not in ".!?":
        first += "."
    if re.search(r"\b(?:message|transfer|colleague|call you back|someone else)\b", first, _I):
        return first
    if can_transfer:
        offer = ("I can take a message for the team, or transfer you to a colleague. "
                 "Or is there something else I can help with?")
    else:
        offer = "I can take a message for the team, or help you with something else."
    return f"{first} {offer}"
