"""Is every fact of a reply found in what the bot may rely on?

A small LLM invents: a phone number that appears nowhere, a price, "the
deposit will be refunded in full" where the policy says the opposite. So each
sentence of a reply is checked before it is spoken: ``facts(sentence)`` finds
the checkable facts in it (numbers, prices, times, dates, phone numbers,
e-mail addresses, names), ``Sources`` holds what the reply may rely on (the
retrieved passages, the bot's configuration texts, the caller's words), and
``ungrounded(sentence, sources)`` lists the facts not found there, plus policy
claims the sources state the opposite of (``contradicts``). An empty list
means the sentence may be spoken.

Matching is tolerant where speech and text differ ("45 dollars" = "$45" =
"forty-five"; "9am" = "9 a.m." = "nine in the morning"; "Saturday" =
"Saturdays"; "+1 212 555 0199" = "(212) 555-0199" = "212 555 0199"; "030 ..." =
"+49 30 ...") and strict on the value (45 is not 54, 9 am is not 9 pm). A time
said without am/pm is keyed by the business rule (1-6 o'clock: afternoon) but
matches either half of the day; one said with am/pm matches only its own (or a
source time without am/pm). Extraction from a reply is conservative (a lone
"one", "first" or a capitalised first word is not a fact), reading of the
sources generous ("an hour" counts as 1, "Monday to Friday" and "Mon-Fri"
include Wednesday, "weekends" Saturday), so ordinary sentences pass and errors
fall on the side of the documents' words.

Policy claims (``contradicts``): refunds, free or charged (a price counts as
charged), open or closed on a day, accepted or not, offered or not. A claim is
reported only when a source clause about the same subject (its words, or the
same days) says the opposite and none agrees ("a trim is free" passes when the
fringe trim is free and the beard trim is not).

Pure Python (``re``, ``unicodedata``); no model, no Django: tens of
microseconds to a millisecond a sentence.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from pipelines.dialogue.normalize import ORDINALS as ORDINAL_WORDS
from pipelines.dialogue.normalize import TENS
from pipelines.dialogue.normalize import UNITS as NORMALIZE_UNITS

_I = re.IGNORECASE

__all__ = ["Fact", "Sources", "contradicts", "day_mentions", "facts", "normalise_word", "stem", "ungrounded", "words"]


@dataclass(frozen=True)
class Fact:
    kind: str  # "number", "price", "time", "date", "phone", "email", "name", "claim"
    text: str  # as written in the sentence
    key: str  # normalised form used for matching


# --- words and numbers ---------------------------------------------------------------------

# The number words are the scenario normaliser's (one table); "oh" and "nought" count only as digits.
UNITS = {word: value for word, value in NORMALIZE_UNITS.items() if word not in ("oh", "o", "nought")}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
DIGIT_WORDS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
               "six": "6", "seven": "7", "eight": "8", "nine": "9"}
# Nouns after which a lone "one" (or "a"/"an" in the sources) is a quantity, not a pronoun.
UNIT_NOUNS = (
    "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks", "month", "months", "year", "years",
    "dollar", "dollars", "euro", "euros", "pound", "pounds", "percent", "person", "people", "time", "times",
    "visit", "visits", "session", "sessions", "night", "nights", "mile", "miles", "kilometre", "kilometres",
    "kilometer", "kilometers", "floor", "child", "children", "adult", "adults", "guest", "guests", "item",
    "items", "appointment", "appointments", "treatment", "treatments", "stylist", "doctor", "room", "rooms",
)

_NUMBER_WORD = "|".join(sorted([*UNITS, *TENS, *SCALES], key=len, reverse=True))
_UNIT_WORD = "|".join(sorted(UNITS, key=len, reverse=True))
_TENS_WORD = "|".join(TENS)
# One spelled-out number: "forty-five", "one hundred and twenty", "a hundred", "twelve".
NUMBER_WORDS = (
    rf"(?:(?:a|{_NUMBER_WORD})(?:(?:[\s-]+|\s+and\s+)(?:{_NUMBER_WORD}))*)"
)
_HOUR_WORD = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_MINUTE_WORD = rf"(?:oh[\s-]+(?:{_UNIT_WORD})|(?:{_TENS_WORD})" \
               r"(?:[\s-]+(?:one|two|three|four|five|six|seven|eight|nine))?" \
               r"|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen)"


def number_value(text: str) -> float | None:
    """ "45" -> 45, "1,250.50" -> 1250.5, "forty-five" -> 45, "one hundred and two" -> 102."""
    text = text.strip().lower()
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?", text):
        return float(text.replace(",", ""))
    values = _spelled_numbers(text)
    return values[0][0] if len(values) == 1 else None


def _spelled_numbers(text: str) -> list[tuple[float, int, int]]:
    """The numbers spelled out in ``text`` as (value, start, end); "five five" is two numbers."""
    out: list[tuple[float, int, int]] = []
    total = current = 0
    last = None  # kind of the previous word: unit, teen, tens, scale
    start = end = -1

    def close():
        nonlocal total, current, start, last
        if start >= 0:
            out.append((float(total + current), start, end))
        total = current = 0
        start, last = -1, None

    for match in re.finditer(r"[a-z]+", text.lower()):
        word = match.group()
        if word == "and" and last == "scale":
            continue
        if word == "a" and start < 0:
            following = text.lower()[match.end():match.end() + 12]
            if re.match(r"[\s-]+(hundred|thousand|million)\b", following):
                start, end, current, last = match.start(), match.end(), 1, "unit"
                continue
        if word in UNITS or word in TENS:
            value = UNITS.get(word, TENS.get(word))
            kind = "tens" if word in TENS else ("unit" if value < 10 else "teen")
            joinable = last is None or last == "scale" or (last == "tens" and kind == "unit")
            if start >= 0 and (not joinable or text[end:match.start()].strip(" -") not in ("", "and")):
                close()
            if start < 0:
                start = match.start()
            current += value
            end, last = match.end(), kind
        elif word in SCALES and start >= 0 and text[end:match.start()].strip(" -") == "":
            scale = SCALES[word]
            if scale == 100:
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * scale
                current = 0
            end, last = match.end(), "scale"
        else:
            close()
    close()
    return out


def _key_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# --- words for matching ------------------------------------------------------------------------

SPELLING = {"colour": "color", "colours": "colors", "coloured": "colored", "colouring": "coloring",
            "centre": "center", "centres": "centers", "programme": "program", "programmes": "programs",
            "grey": "gray", "jewellery": "jewelry", "tyre": "tire", "tyres": "tires", "cheque": "check",
            "cheques": "checks", "favour": "favor", "licence": "license", "theatre": "theater",
            "metre": "meter", "litre": "liter", "kilometre": "kilometer", "kilometres": "kilometers"}


def strip_accents(text: str) -> str:
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@lru_cache(maxsize=20000)
def stem(word: str) -> str:
    """A light stem: plural, -ing, -ed and British spelling folded ("colours" -> "color", "booked" -> "book")."""
    w = SPELLING.get(word, word)
    w = re.sub(r"is(e|ed|es|ing|ation|ations)$", r"iz\1", w) if len(w) > 6 else w
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith(("sses", "shes", "ches", "xes", "zes")):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ed") and not w.endswith("eed"):
        w = w[:-2]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsaeiou":
        w = w[:-1]
    if len(w) > 4 and w.endswith("e") and not w.endswith(("ee", "ye")):
        w = w[:-1]
    return w


_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*(?:-[^\W\d_]+)*|\d+", re.UNICODE)


def normalise_word(word: str) -> str:
    """Lowercase, no accents, no possessive, no hyphen: "Maria's" -> "maria", "Wi-Fi" -> "wifi"."""
    word = strip_accents(word.lower()).replace("’", "'")
    word = re.sub(r"'s$|s'$|'$", "", word)
    return word.replace("-", "").replace("'", "")


def words(text: str) -> list[str]:
    """The words of ``text`` normalised (``normalise_word``), in order."""
    return [normalise_word(w) for w in _WORD.findall(text)]


# --- extraction ---------------------------------------------------------------------------------

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december")
MONTH_ABBR = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
              "oct": 10, "nov": 11, "dec": 12}
_MONTH_RE = "|".join(MONTHS) + "|" + "|".join(rf"{a}\.?" for a in MONTH_ABBR)
_DAY_ORD = "|".join(sorted(ORDINAL_WORDS, key=len, reverse=True))
CURRENCY_WORDS = r"dollars?|bucks|usd|euros?|eur|pounds?(?!\s+of)|gbp|quid|francs?|chf|cad|aud"

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
URL_RE = re.compile(r"\b(?:https?://|www\.)\S+", _I)
PHONE_RE = re.compile(
    # groups of digits as written in many countries: "0151 2345 6789", "030 1234 5678", "06-12 34 56 78"
    r"(?<![\w+.,:/-])\(?0\d{1,4}\)?(?:[\s.-]\d{2,5}){1,4}(?![\w.,:/-]?\d)"
    r"|(?<![\w+])(?:\+\s?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])?\d{3}[\s.-]\d{4}(?![\w-]|\s\d)"
    r"|(?<![\w+])\+?\d{7,15}(?![\w.,]\d)"
    r"|(?<![\w+])\+\s?\d{1,3}(?:[\s.-]\d{2,5}){2,5}(?!\w)"
)
PRICE_RES = [
    re.compile(r"(?:[$€£]|us\$|usd\s?|eur\s?)\s?(\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)(?:\s?(k)\b)?", _I),
    re.compile(rf"(\d{{1,3}}(?:,\d{{3}})+(?:\.\d{{1,2}})?|\d+(?:\.\d{{1,2}})?)\s?(?:{CURRENCY_WORDS}|[€£$])(?!\w)", _I),
    re.compile(rf"\b({NUMBER_WORDS})\s+(?:{CURRENCY_WORDS})\b", _I),
    re.compile(r"(\d+)\s?(cents?)\b", _I),
]
_MER = r"(?P<mer>a\.?\s?m\b\.?|p\.?\s?m\b\.?)"
_PART = r"(?:in\s+the\s+(?P<part>morning|afternoon|evening)|at\s+(?P<night>night))"
_HOUR_ANY = rf"(?P<h>\d{{1,2}}|{_HOUR_WORD})"
_MINUTES = rf"(?:[:.](?P<m>\d{{2}})|[\s-]+(?P<mw>{_MINUTE_WORD})(?!\s+(?:minutes?|hours?|dollars?|percent)))"
TIME_RES = [
    # half past four (in the afternoon), quarter to five pm, twenty past nine
    re.compile(rf"\b(?P<rel>half|quarter|(?:\d{{1,2}}|{_MINUTE_WORD})(?:\s+minutes?)?)\s+"
               rf"(?P<dir>past|after|to|before)\s+"
               rf"(?P<h>\d{{1,2}}|{_HOUR_WORD})(?!\s*(?:minutes?|hours?|days?|weeks?|people|dollars?))"
               rf"(?:\s*(?:o'clock\s*)?(?:{_MER}|{_PART}))?", _I),
    re.compile(rf"\b{_HOUR_ANY}{_MINUTES}?\s*(?:o'clock\s*)?{_MER}(?!\w)", _I),
    re.compile(rf"\b{_HOUR_ANY}{_MINUTES}?\s+(?:o'clock\s+)?{_PART}", _I),
    re.compile(rf"\b{_HOUR_ANY}{_MINUTES}?\s+o'clock\b", _I),
    re.compile(r"\b(?P<h>[01]?\d|2[0-3])[:h](?P<m>[0-5]\d)\b(?!\s*(?:minutes?|hours?))", _I),
    re.compile(r"\b(?P<word>noon|midday|midnight)\b", _I),
]
DATE_RES = [
    re.compile(r"\b(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})\b"),
    re.compile(r"\b(?P<a>\d{1,2})/(?P<b>\d{1,2})(?:/(?P<y>\d{2,4}))?\b"),
    re.compile(rf"\b(?P<month>{_MONTH_RE})\s+(?:the\s+)?(?P<d>\d{{1,2}}(?:st|nd|rd|th)?|{_DAY_ORD})\b", _I),
    re.compile(rf"\b(?:the\s+)?(?P<d>\d{{1,2}}(?:st|nd|rd|th)?|{_DAY_ORD})\s+(?:of\s+)?(?P<month>{_MONTH_RE})(?!\w)",
               _I),
    re.compile(r"\b(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b", _I),
    re.compile(r"\b(?P<monthonly>january|february|march|april|june|july|august|september|october|november|december)\b",
               _I),
    re.compile(r"(?<=[a-z,;] )(?P<may>May)\b"),
]
NUMBER_RES = [
    re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?:st|nd|rd|th)?"
               r"(?:\s?(?:%|percent|per\s+cent))?(?![\w])"
               r"|(?<![\w.])(\d+)(?:st|nd|rd|th)\b", _I),
]
_ORDINAL_RE = re.compile(rf"\b(?P<tens>(?:{_TENS_WORD})[\s-]+)?(?P<ord>{_DAY_ORD})\b", _I)
_PHONE_WORDS_RE = re.compile(
    r"\b(?:(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|double|triple)(?:[\s,.-]+|$)){7,}", _I)

# Capitalised words that are not names.
NOT_NAMES = {
    "i", "i'm", "i'll", "i've", "i'd", "ok", "okay", "mr", "mrs", "ms", "dr", "st", "a.m", "p.m", "am", "pm",
    "tv", "faq", "id", "vs", "etc", "eg", "ie", "yes", "no", "hi", "hello", "please", "thanks", "thank",
    "sorry", "sure", "great", "oh", "hmm", "well", "so", "and", "or", "but", "the", "a", "an",
}
STOPWORDS = frozenset("""
a about above after again against all almost also although always am among an and another any anybody
anyone anything anyway anywhere are aren't around as at away back be because been before being below
beside besides between beyond both but by can can't cannot could couldn't did didn't do does doesn't
doing don't done down during each either else enough even ever every everybody everyone everything
everywhere except few for from further get gets getting give given go goes going gone got gotten had
hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him himself his how
how's however i i'd i'll i'm i've if in indeed instead into is isn't it it's its itself just least less
let let's like likely lot lots made make makes many may maybe me might mine more most much must mustn't
my myself near need needs neither never next no nobody none nor not nothing now nowhere of off often oh
ok okay on once one only onto or other others otherwise ought our ours ourselves out over own per perhaps
please quite rather really same she she'd she'll she's should shouldn't since so some somebody someone
something sometimes somewhere still such sure than that that's the their theirs them themselves then there
there's therefore these they they'd they'll they're they've this those though through thus till to too
toward towards under unless until up upon us usually very via was wasn't we we'd we'll we're we've were
weren't what what's whatever when when's whenever where where's wherever whether which while who who's
whoever whole whom whose why why's will with within without won't would wouldn't yes yet you you'd you'll
you're you've your yours yourself yourselves hi hello thanks thank sorry great well yeah yep nope
""".split())


@dataclass
class _Span:
    start: int
    end: int
    fact: Fact


class _Taken:
    def __init__(self):
        self.spans: list[tuple[int, int]] = []

    def free(self, start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in self.spans)

    def take(self, start: int, end: int) -> None:
        self.spans.append((start, end))


def _hour_value(token: str) -> int | None:
    token = token.lower()
    if token.isdigit():
        return int(token)
    return UNITS.get(token)


def _minute_value(match: re.Match) -> int | None:
    if match.groupdict().get("m"):
        return int(match.group("m"))
    words_ = match.groupdict().get("mw")
    if not words_:
        return 0
    words_ = re.sub(r"^oh[\s-]+", "", words_.lower())
    spelled = _spelled_numbers(words_)
    return int(spelled[0][0]) if len(spelled) == 1 else None


def _business_hour(hour: int) -> int:
    """The business rule for a time said without am/pm: 1-6 afternoon, 7-11 morning, 12 noon."""
    return hour + 12 if 1 <= hour <= 6 else hour


def _time_fact(match: re.Match) -> tuple[str, bool] | None:
    """(key "HH:MM", explicit) for a time match, or None when it is not a time of day."""
    g = match.groupdict()
    if g.get("word"):
        return ("00:00" if g["word"].lower() == "midnight" else "12:00"), True
    hour = _hour_value(g["h"]) if g.get("h") else None
    if hour is None:
        return None
    if g.get("rel"):
        rel = g["rel"].lower()
        minutes = 30 if rel == "half" else 15 if rel == "quarter" else None
        if minutes is None:
            if not re.search(r"minute", rel) and g["dir"].lower() not in ("past", "after"):
                return None  # "from 9 to 7" is a range, not seven minutes to nine
            spelled = number_value(re.sub(r"\s+minutes?", "", rel))
            if spelled is None or not 1 <= spelled < 60:
                return None
            minutes = int(spelled)
        if g["dir"].lower() in ("to", "before"):
            hour, minutes = (hour - 1) % 12 or 12, 60 - minutes
    else:
        minutes = _minute_value(match)
    if minutes is None or not 0 <= minutes < 60:
        return None
    mer = (g.get("mer") or "").lower().replace(".", "").replace(" ", "")
    part = (g.get("part") or "").lower()
    explicit = bool(mer or part or g.get("night"))
    if mer or part or g.get("night"):
        if hour > 12 or hour == 0:
            if mer:
                return None  # "14 pm" is not a time
        elif mer == "pm" or part in ("afternoon", "evening") or g.get("night"):
            hour = hour % 12 + 12
        elif mer == "am" or part == "morning":
            hour = hour % 12
    elif g.get("m") and (len(g["h"]) == 2 and g["h"].startswith("0") or hour == 0 or hour > 12):
        explicit = True  # 24-hour clock: "16:30", "09:00"
    elif hour > 12:
        return None
    else:
        hour = _business_hour(hour)
    if hour > 23:
        return None
    return f"{hour:02d}:{minutes:02d}", explicit


def _month_number(token: str) -> int:
    token = token.lower().rstrip(".")
    if token in MONTHS:
        return MONTHS.index(token) + 1
    return MONTH_ABBR.get(token, 0)


def _day_number(token: str) -> int:
    token = token.lower()
    digits = re.match(r"\d+", token)
    if digits:
        return int(digits.group())
    return ORDINAL_WORDS.get(token, 0)


def _sentence_starts(text: str) -> set[int]:
    """Offsets of the first word of each sentence, list item, quotation or clause after a colon."""
    starts = {0}
    for m in re.finditer(r"(?:[.!?:;]|^|\n)[\s\"'“‘(*#>•\-–—]*(?=\S)", text):
        starts.add(m.end())
    for m in re.finditer(r"^[\s\"'“‘(*#>•\-–—\d.)]*", text, re.MULTILINE):
        starts.add(m.end())
    return starts


_CAP_WORD = re.compile(r"(?<![\w@.'’-])(?:[^\W\d_a-z][\w'’&.-]*[^\W_]|[^\W\d_a-z])(?![\w@])", re.UNICODE)
_NAME_JOINERS = {"of", "de", "del", "della", "da", "di", "du", "van", "von", "der", "den", "la", "le", "&", "'n'"}


def _name_spans(text: str, taken: _Taken, starts: set[int]) -> list[_Span]:
    out: list[_Span] = []
    tokens = [m for m in _CAP_WORD.finditer(text) if m.group()[0].isupper()]
    i = 0
    while i < len(tokens):
        first = tokens[i]
        group = [first]
        j = i + 1
        while j < len(tokens):
            gap = text[group[-1].end():tokens[j].start()]
            if gap == " " or (gap.strip().lower() in _NAME_JOINERS and gap.count(" ") == 2):
                group.append(tokens[j])
                j += 1
            else:
                break
        i = j
        # Drop words that are not name parts: sentence-initial common words, weekdays, months, "I".
        kept = []
        for k, tok in enumerate(group):
            word = tok.group()
            low = word.lower().rstrip(".")
            low_base = re.sub(r"['’]s$", "", low)
            initial = tok.start() in starts
            if (low_base in NOT_NAMES or low_base.rstrip("s") in WEEKDAYS or low_base in MONTHS or low_base in _DAY_ABBR
                    or low_base in MONTH_ABBR or not taken.free(tok.start(), tok.end())):
                if kept:
                    out.append(_name_fact(text, kept))
                kept = []
                continue
            if initial and (low_base in STOPWORDS or len(group) == 1 or not kept and k + 1 == len(group)):
                continue  # "Our", "Yes", or a lone capitalised first word: not a name
            if initial and not kept and k + 1 < len(group) and low_base in _COMMON_OPENERS:
                continue
            kept.append(tok)
        if kept:
            out.append(_name_fact(text, kept))
    return [s for s in out if s is not None]


_DAY_ABBR = {"mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun"}
# Sentence openers that are capitalised because they come first, not because they are names.
_COMMON_OPENERS = frozenset("""
absolutely actually additionally also alternatively anyway as at certainly currently definitely during
every for free from good great here however if in new now of on once our sadly so sorry sure thank thanks that the
all any basic best classic extra full local online premium private regular special standard
these this those to today tomorrow unfortunately welcome what when where while with yes you your
""".split())


def _name_fact(text: str, tokens: list[re.Match]) -> _Span | None:
    start, end = tokens[0].start(), tokens[-1].end()
    phrase = text[start:end].rstrip(".")
    key = " ".join(words(phrase))
    if not key or len(key) < 2:
        return None
    return _Span(start, start + len(phrase), Fact("name", phrase, key))


def _extract(text: str, generous: bool = False) -> list[_Span]:
    """Facts of ``text`` with their spans, first come first served by kind (e-mails, phones, prices...)."""
    taken = _Taken()
    spans: list[_Span] = []

    def add(start: int, end: int, fact: Fact) -> bool:
        if not taken.free(start, end):
            return False
        taken.take(start, end)
        spans.append(_Span(start, end, fact))
        return True

    for m in URL_RE.finditer(text):
        taken.take(m.start(), m.end())
    for m in EMAIL_RE.finditer(text):
        email = m.group().rstrip(".")
        add(m.start(), m.start() + len(email), Fact("email", email, email.lower()))
    for m in PHONE_RE.finditer(text):
        raw = m.group()
        digits = re.sub(r"\D", "", raw)
        if 7 <= len(digits) <= 15 and not re.fullmatch(r"\d{4}", raw.strip()):
            if re.fullmatch(r"\d+", raw) and not generous and len(digits) < 8:
                continue  # a bare 7-digit count is more likely a number
            add(m.start(), m.end(), Fact("phone", raw, ("+" if raw.lstrip().startswith("+") else "") + digits))
    for m in _PHONE_WORDS_RE.finditer(text):
        digits = _spoken_digits(m.group())
        if 7 <= len(digits) <= 15:
            raw = m.group().rstrip(" ,.-")
            add(m.start(), m.start() + len(raw), Fact("phone", raw, digits))
    for regex in PRICE_RES:
        for m in regex.finditer(text):
            value = number_value(m.group(1))
            if value is None:
                continue
            if m.lastindex and m.lastindex >= 2 and m.group(2):
                unit = m.group(2).lower()
                value = value * 1000 if unit == "k" else value / 100 if unit.startswith("cent") else value
            add(m.start(), m.end(), Fact("price", m.group(), _key_number(value)))
    for regex in TIME_RES:
        for m in regex.finditer(text):
            found = _time_fact(m)
            if found and taken.free(m.start(), m.end()):
                raw = m.group().rstrip()
                if re.search(r"(?<![.\s])[ap]m\.$", raw, _I) or re.search(r"\s[ap]m\.$", raw, _I):
                    raw = raw[:-1]  # the full stop of the sentence, not of "p.m."
                add(m.start(), m.start() + len(raw), Fact("time", raw, found[0]))
    for regex in DATE_RES:
        for m in regex.finditer(text):
            fact = _date_fact(m)
            if fact:
                add(m.start(), m.end(), fact)
    for regex in NUMBER_RES:
        for m in regex.finditer(text):
            raw = m.group(1) or m.group(2)
            value = number_value(raw)
            if value is not None:
                add(m.start(), m.end(), Fact("number", m.group(), _key_number(value)))
    for m in _ORDINAL_RE.finditer(text):
        tens = TENS[m.group("tens").strip(" -").lower()] if m.group("tens") else 0
        value = ORDINAL_WORDS[m.group("ord").lower()] + tens
        if m.group("ord").lower() in ("first", "second") and not m.group("tens") and not generous:
            continue  # "first of all", "just a second"
        add(m.start(), m.end(), Fact("number", m.group(), _key_number(value)))
    lowered = text.lower()
    for value, start, end in _spelled_numbers(lowered):
        raw = text[start:end]
        if raw.lower() in ("one", "zero", "a") and not generous:
            following = lowered[end:end + 16].split()
            if not following or following[0].strip(".,;:!?") not in UNIT_NOUNS:
                continue  # "the one you want", "no one"
        if (raw.lower() == "a" or raw.lower().startswith("a ")) and not re.match(
                r"a[\s-]+(hundred|thousand|million)", raw.lower()):
            continue
        add(start, end, Fact("number", raw, _key_number(value)))
    if generous:
        for m in re.finditer(rf"\b(?:an?|per)\s+(?:{'|'.join(UNIT_NOUNS)})\b", lowered):
            spans.append(_Span(m.start(), m.end(), Fact("number", m.group(), "1")))
        for m in re.finditer(r"\bhalf\s+(?:an\s+)?hour\b", lowered):
            spans.append(_Span(m.start(), m.end(), Fact("number", m.group(), "30")))
        for m in re.finditer(r"\b(?:a\s+)?quarter\s+(?:of\s+)?(?:an\s+)?hour\b", lowered):
            spans.append(_Span(m.start(), m.end(), Fact("number", m.group(), "15")))
        for m in re.finditer(r"\b(?:a\s+)?(dozen|couple|pair|twice|once|both)\b", lowered):
            value = {"dozen": 12, "couple": 2, "pair": 2, "twice": 2, "once": 1, "both": 2}[m.group(1)]
            spans.append(_Span(m.start(), m.end(), Fact("number", m.group(), str(value))))
    spans.extend(_name_spans(text, taken, _sentence_starts(text)))
    spans.sort(key=lambda s: s.start)
    return spans


def _spoken_digits(text: str) -> str:
    out = []
    repeat = 1
    for word in re.findall(r"[a-z]+", text.lower()):
        if word == "double":
            repeat = 2
        elif word == "triple":
            repeat = 3
        elif word in DIGIT_WORDS:
            out.append(DIGIT_WORDS[word] * repeat)
            repeat = 1
    return "".join(out)


def _date_fact(m: re.Match) -> Fact | None:
    g = m.groupdict()
    if g.get("wd"):
        return Fact("date", m.group(), g["wd"].lower())
    if g.get("monthonly"):
        return Fact("date", m.group(), f"{MONTHS.index(g['monthonly'].lower()) + 1:02d}")
    if g.get("may"):
        return Fact("date", m.group(), "05")
    if g.get("month"):
        month, day = _month_number(g["month"]), _day_number(g["d"])
        if month and 1 <= day <= 31:
            return Fact("date", m.group(), f"{month:02d}-{day:02d}")
        return None
    if g.get("mo"):
        month, day = int(g["mo"]), int(g["d"])
        return Fact("date", m.group(), f"{month:02d}-{day:02d}") if 1 <= month <= 12 and 1 <= day <= 31 else None
    if g.get("a"):
        a, b = int(g["a"]), int(g["b"])
        if 1 <= a <= 12 and 1 <= b <= 31 or 1 <= b <= 12 and 1 <= a <= 31:
            return Fact("date", m.group(), f"{a:02d}/{b:02d}")
    return None


def facts(text: str) -> list[Fact]:
    """Every checkable fact in ``text``, in order: numbers (digits and number words, "twelve",
    "forty-five", "one hundred"), prices, times, dates (weekday names and month dates), phone
    numbers, e-mail addresses, and names of people and services (capitalised words and phrases
    that are not a sentence's first word; a lone "one", "first" or "second" is not counted)."""
    return [s.fact for s in _extract(text or "")]


# --- days in the sources -----------------------------------------------------------------------------

_DAY_NAME = (r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?"
             r"|(?-i:Mon|Tue|Tues|Wed|Thu|Thur|Thurs|Fri|Sat|Sun)\b\.?")
_DAY_RANGE_RE = re.compile(
    rf"\b(?P<a>{_DAY_NAME})\s*(?:to|through|thru|till|until|-|–|—)\s*(?P<b>{_DAY_NAME})(?!\w)", _I)
_DAY_RE = re.compile(rf"\b(?P<a>{_DAY_NAME})(?!\w)", _I)


def _weekday(token: str) -> int:
    token = token.lower().rstrip(".")
    return next(i for i, day in enumerate(WEEKDAYS) if day.startswith(token[:3]))


_DAY_GROUPS = {
    "weekend": ("saturday", "sunday"), "weekends": ("saturday", "sunday"),
    "weekday": WEEKDAYS[:5], "weekdays": WEEKDAYS[:5], "every day": WEEKDAYS, "daily": WEEKDAYS,
    "seven days a week": WEEKDAYS, "7 days a week": WEEKDAYS, "all week": WEEKDAYS, "24/7": WEEKDAYS,
}
_DAY_GROUP_RE = re.compile(r"\b(?:" + "|".join(re.escape(k) for k in sorted(_DAY_GROUPS, key=len, reverse=True))
                           + r")(?!\w)", _I)
_HOLIDAY_RE = re.compile(r"\b(?:public|bank|national)?\s*holidays?\b", _I)


def day_mentions(text: str) -> list[tuple[int, tuple[str, ...]]]:
    """(offset, days) for every weekday, range of weekdays and group ("weekends", "daily") in ``text``."""
    out: list[tuple[int, tuple[str, ...]]] = []
    taken = _Taken()
    for m in _DAY_RANGE_RE.finditer(text):
        a, b = _weekday(m.group("a")), _weekday(m.group("b"))
        days = tuple(WEEKDAYS[(a + i) % 7] for i in range((b - a) % 7 + 1))
        out.append((m.start(), days))
        taken.take(m.start(), m.end())
    for m in _DAY_GROUP_RE.finditer(text):
        if taken.free(m.start(), m.end()):
            out.append((m.start(), _DAY_GROUPS[m.group().lower()]))
            taken.take(m.start(), m.end())
    for m in _DAY_RE.finditer(text):
        if taken.free(m.start(), m.end()):
            out.append((m.start(), (WEEKDAYS[_weekday(m.group("a"))],)))
    for m in _HOLIDAY_RE.finditer(text):
        out.append((m.start(), ("holiday",)))
    out.sort()
    return out


# --- policy claims ------------------------------------------------------------------------------------

_NEGATORS = {"not", "no", "never", "cannot", "can't", "won't", "don't", "doesn't", "isn't", "aren't", "wasn't",
             "weren't", "didn't", "without", "nor", "neither", "unable", "n't"}
_CLAUSE_SPLIT = re.compile(r"[;.!?]\s+|[;!?]$|\n+|,?\s+\b(?:but|however|although|though|whereas|except)\b,?\s+", _I)
# (family, regex, polarity). Longer phrases first; a match consumes its text.
_CLAIM_TRIGGERS: list[tuple[str, re.Pattern, int]] = [
    ("refund", re.compile(r"\bnon[\s-]?refundable\b", _I), -1),
    ("refund", re.compile(r"\b(?:refund(?:s|ed|able)?|reimburs\w+|money\s+back)\b", _I), +1),
    ("free", re.compile(r"\b(?:free\s+of\s+charge|at\s+no\s+(?:extra\s+|additional\s+)?(?:cost|charge)"
                        r"|no\s+(?:extra\s+|additional\s+)?"
                        r"(?:charge|fee|cost)|without\s+(?:a\s+)?(?:charge|fee)|complimentary|for\s+free)\b", _I), +1),
    ("free", re.compile(r"(?<![\w-])(?<!feel\s)free\b(?!-)", _I), +1),
    ("free", re.compile(r"\b(?:charged?|charges|fees?|costs?|pay|pays|paid|payable|extra|surcharge)\b", _I), -1),
    ("open", re.compile(r"\b(?:open|opens|opened)\b(?!\s+(?:an?|the|your|my)\s)", _I), +1),
    ("open", re.compile(r"\bclosed\b", _I), -1),
    ("accept", re.compile(r"\b(?:not\s+)?(?:accept(?:s|ed|ing)?|welcome[sd]?|allowed|permitted)\b", _I), +1),
    ("accept", re.compile(r"\btakes?\b(?=\s+(?:\w+\s+)?(?:cash|cards?|credit|debit|checks?|cheques?|insurance"
                          r"|walk-?ins?|payments?|bookings?|reservations?|apple|google|contactless|amex|visa"
                          r"|mastercard))", _I), +1),
    ("accept", re.compile(r"\b(?:prohibited|forbidden|banned|refused)\b", _I), -1),
    ("offer", re.compile(r"\b(?:unavailable|discontinued)\b", _I), -1),
    ("offer", re.compile(r"\b(?:not\s+)?(?:offer(?:s|ed)?|available|provided?|provides)\b", _I), +1),
]
# Words that say nothing about what a claim is about.
_CLAIM_FILLER = STOPWORDS | {
    "full", "fully", "entire", "entirely", "always", "completely", "totally", "available", "given", "issued",
    "offered", "provided", "possible", "salon", "clinic", "office", "shop", "store", "business", "here",
    "also", "happy", "course", "policy", "every", "case", "event", "guaranteed", "able", "allowed",
    "the", "of", "in", "at", "on", "be", "will", "can", "may",
}
_SUBJECT_STOP = {"if", "when", "unless", "because", "for", "within", "by", "after", "before", "on", "at", "from",
                 "with", "until", "once", "as", "since", "during", "while", "so", "in"}


@dataclass(frozen=True)
class _Claim:
    family: str
    polarity: int
    subject: tuple[str, ...]  # stemmed words the claim is about, in order (days for "open")
    words: frozenset  # every content word of the clause, stemmed
    text: str
    subject_first: bool  # the subject stands before the trigger ("cheques are accepted")


def _content(tokens: list[str]) -> list[str]:
    return [stem(t) for t in tokens if t not in _CLAIM_FILLER and not t.isdigit() and t not in UNITS and len(t) > 1]


def _claims(text: str) -> list[_Claim]:
    out: list[_Claim] = []
    for clause in _CLAUSE_SPLIT.split(text or ""):
        clause = clause.strip()
        if len(clause) < 4:
            continue
        low = clause.lower()
        hits: list[tuple[int, int, str, int]] = []
        taken = _Taken()
        for family, regex, polarity in _CLAIM_TRIGGERS:
            for m in regex.finditer(low):
                if taken.free(m.start(), m.end()):
                    taken.take(m.start(), m.end())
                    pol = polarity
                    if m.group().startswith("not "):
                        pol = -pol
                    hits.append((m.start(), m.end(), family, pol))
        price = next((m for m in (r.search(clause) for r in PRICE_RES[:3]) if m), None)
        has_price = price is not None
        if has_price and not any(h[2] == "free" for h in hits):
            # "A beard trim can be added for 12 dollars": not free, though no word says so.
            hits.append((price.start(), price.start(), "free", -1))
        if not hits:
            continue
        clause_words = [normalise_word(w) for w in re.findall(r"[^\W\d_]+(?:['’-][^\W\d_]+)*|\d+", low)]
        content = frozenset(_content(clause_words))
        hits.sort()
        days = day_mentions(clause)
        for family in {h[2] for h in hits}:
            fam_hits = [h for h in hits if h[2] == family]
            polarities = []
            for start, end, _, pol in fam_hits:
                polarities.append(pol * _negation(low, start, end, family))
            if family == "open":
                for offset, found in days:
                    before = [i for i, h in enumerate(fam_hits) if h[0] <= offset]
                    index = before[-1] if before else 0
                    out.append(_Claim("open", polarities[index], tuple(found), content, clause, False))
                continue
            if family == "free" and has_price:
                polarities.append(-1)
            if len(set(polarities)) != 1:
                continue  # "free" and "charged" in one clause: not a clear claim
            start, end = fam_hits[0][0], fam_hits[-1][1]
            before = re.findall(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", low[:start])
            before_words = _content([normalise_word(w) for w in before])
            subject_first = bool(before_words)
            if subject_first:
                subject = before_words[-4:]
            else:
                after = []
                for w in (normalise_word(w) for w in re.findall(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", low[end:])):
                    if w in _SUBJECT_STOP and after:
                        break
                    after.append(w)
                subject = _content(after)[:4]
            if subject:
                out.append(_Claim(family, polarities[0], tuple(subject), content, clause, subject_first))
    return out


def _negation(low: str, start: int, end: int, family: str) -> int:
    before = re.findall(r"[a-z'-]+", low[:start])[-3:]
    if any(w in _NEGATORS or w.endswith("n't") for w in before):
        return -1
    if family in ("refund", "accept", "free"):
        after = re.findall(r"[a-z'-]+", low[end:])[:3]
        if any(w in _NEGATORS or w.endswith("n't") for w in after) and family != "free":
            return -1
    return 1


def _contradiction(claim: _Claim, source_claims: list[_Claim]) -> bool:
    same = [c for c in source_claims if c.family == claim.family]
    if not same:
        return False
    if claim.family == "open":  # day by day: "open every day" against "closed on Sundays"
        for day in claim.subject:
            found = [c for c in same if day in c.subject]
            if found and all(c.polarity != claim.polarity for c in found):
                return True
        return False
    subject = set(claim.subject)
    found = [c for c in same if subject <= c.words]
    if not found:
        head = claim.subject[-1] if claim.subject_first else claim.subject[0]
        found = [c for c in same if head in c.words and (c.subject[-1] if c.subject_first else c.subject[0]) == head]
    return bool(found) and all(c.polarity != claim.polarity for c in found)


# --- sources ----------------------------------------------------------------------------------------------

class Sources:
    """What a reply may rely on: retrieved passages, the bot's configuration texts (prompt,
    greeting, scenarios' prompts and choices, tools' answers), the caller's words.

    Texts are read once when added; ``supports`` is then a few set look-ups.
    """

    def __init__(self, *texts: str):
        self.texts: list[str] = []
        self.numbers: set[str] = set()
        self.prices: set[str] = set()
        self.times: set[str] = set()  # "HH:MM", for times said with am/pm or on the 24-hour clock
        self.clock: set[str] = set()  # "H:MM" on the 12-hour clock, for times said without am/pm
        self.explicit_clock: set[str] = set()  # "H:MM" on the 12-hour clock, for the others
        self.weekdays: set[str] = set()
        self.dates: set[str] = set()  # "MM-DD" and "MM"
        self.phones: set[str] = set()
        self.emails: set[str] = set()
        self.claims: list[_Claim] = []
        self._names_text = " "
        self.add(*texts)

    def add(self, *texts: str) -> None:
        names = []
        for text in texts:
            if not text or not text.strip():
                continue
            self.texts.append(text)
            names.append(" ".join(words(text)))
            for span in _extract(text, generous=True):
                self._index(span.fact)
            for _, days in day_mentions(text):
                self.weekdays.update(d for d in days if d != "holiday")
            self.claims.extend(_claims(text))
        if names:
            self._names_text += " | ".join(names) + " | "

    def _index(self, fact: Fact) -> None:
        kind, key = fact.kind, fact.key
        if kind == "number":
            self.numbers.add(key)
        elif kind == "price":
            self.prices.add(key)
            self.numbers.add(key)
        elif kind == "time":
            hour, minute = (int(x) for x in key.split(":"))
            clock = f"{hour % 12 or 12}:{minute:02d}"
            if _explicit_time(fact.text):
                self.times.add(key)
                self.explicit_clock.add(clock)
            else:
                self.clock.add(clock)
            self.numbers.add(str(hour % 12 or 12))
            self.numbers.add(str(hour))
            if minute:
                self.numbers.add(str(minute))
        elif kind == "date":
            if key in WEEKDAYS:
                self.weekdays.add(key)
            elif "/" in key:
                a, b = key.split("/")
                self.dates.update({f"{a}-{b}", f"{b}-{a}", a, b})
                self.numbers.update({str(int(a)), str(int(b))})
            else:
                self.dates.add(key)
                self.dates.add(key[:2])
                if "-" in key:
                    self.numbers.add(str(int(key[3:])))
        elif kind == "phone":
            self.phones.add(re.sub(r"\D", "", key).lstrip("0"))
        elif kind == "email":
            self.emails.add(key)

    def supports(self, fact: Fact) -> bool:
        kind, key = fact.kind, fact.key
        if kind == "number":
            return key in self.numbers
        if kind == "price":
            return key in self.prices or key in self.numbers
        if kind == "time":
            hour, minute = (int(x) for x in key.split(":"))
            clock = f"{hour % 12 or 12}:{minute:02d}"
            if _explicit_time(fact.text):  # "9 pm": a source's 9 pm, or a 9 o'clock said without am/pm
                return key in self.times or clock in self.clock
            return clock in self.clock or clock in self.explicit_clock or (
                minute == 0 and str(hour % 12 or 12) in self.numbers)
        if kind == "date":
            if key in WEEKDAYS:
                return key in self.weekdays
            if "/" in key:
                a, b = key.split("/")
                return f"{a}-{b}" in self.dates or f"{b}-{a}" in self.dates
            return key in self.dates
        if kind == "phone":
            digits = re.sub(r"\D", "", key).lstrip("0")  # "030 ..." is "+49 30 ...": no trunk zero
            return any(digits == p or (min(len(digits), len(p)) >= 7 and (p.endswith(digits) or digits.endswith(p)))
                       for p in self.phones)
        if kind == "email":
            return key in self.emails
        if kind == "name":
            return self._has_name(key)
        if kind == "claim":
            return False
        return False

    def _has_name(self, key: str) -> bool:
        variants = {key, re.sub(r"s$", "", key), key + "s", key.replace(" ", "")}
        return any(re.search(rf"(?<![a-z0-9]){re.escape(v)}(?![a-z0-9])", self._names_text) for v in variants if v)


def _explicit_time(text: str) -> bool:
    low = text.lower()
    return bool(re.search(r"[ap]\.?\s?m\b|morning|afternoon|evening|night|noon|midday|midnight"
                          r"|\b(?:[01]\d|2[0-3]|0)[:h]\d\d|"
                          r"\b1[3-9][:h]\d\d|\b2[0-3][:h]\d\d", low))


def contradicts(sentence: str, sources: Sources) -> bool:
    """True when ``sentence`` makes a policy claim (refunds, free or charged, open or closed on a
    day, accepted or not) about a subject the sources state the opposite of, and no source agrees."""
    return bool(_contradicted(sentence, sources))


def _contradicted(sentence: str, sources: Sources) -> list[Fact]:
    if not sources.claims:
        return []
    out = []
    for claim in _claims(sentence):
        if _contradiction(claim, sources.claims):
            polarity = "+" if claim.polarity > 0 else "-"
            out.append(Fact("claim", claim.text, f"{claim.family}:{polarity}:{' '.join(claim.subject)}"))
    return out


def ungrounded(sentence: str, sources: Sources) -> list[Fact]:
    """The facts of ``sentence`` not found in ``sources``, and its policy claims the sources
    contradict (kind "claim"). Empty: the sentence may be spoken."""
    missing = [f for f in facts(sentence) if not sources.supports(f)]
    return missing + _contradicted(sentence, sources)
