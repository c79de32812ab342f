"""Lead scoring: a bot's rules turn what happened in a call into points and a tier.

A rule is ``{"signal": NAME, "points": N}`` plus either ``"keywords": [...]``
(matched in what the caller said) or a built-in signal name from
``BUILTIN_SIGNALS``. Thresholds: score >= hot is hot, >= warm is warm, else cold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

BUILTIN_SIGNALS = ("gave_phone", "gave_email", "gave_name", "booking_created", "transferred")

DEFAULT_RULES: tuple[dict, ...] = (
    {"signal": "asked_price", "points": 10, "keywords": ["price", "cost", "how much", "fee", "quote"]},
    {"signal": "asked_booking", "points": 20, "keywords": ["book", "appointment", "reserve", "available"]},
    {"signal": "gave_phone", "points": 15},
    {"signal": "gave_email", "points": 10},
    {"signal": "gave_name", "points": 5},
    {"signal": "booking_created", "points": 20},
)
DEFAULT_HOT, DEFAULT_WARM = 40, 20


class RuleError(ValueError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


def validate_rules(rules) -> list[dict]:
    """Check a rule list; raise RuleError naming each problem (e.g. ``rules[2].points: ...``)."""
    if not isinstance(rules, list):
        raise RuleError(["must be a list of rules"])
    errors, cleaned = [], []
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        if not isinstance(rule, dict):
            errors.append(f"{where}: must be a mapping with signal and points")
            continue
        unknown = set(rule) - {"signal", "points", "keywords"}
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: keywords, points, signal")
        signal, points, keywords = rule.get("signal"), rule.get("points"), rule.get("keywords")
        if not isinstance(signal, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", signal):
            errors.append(f"{where}.signal: required, lowercase letters, digits and _ (got {signal!r})")
        if isinstance(points, bool) or not isinstance(points, int):
            errors.append(f"{where}.points: a whole number (got {points!r})")
        if keywords is None:
            if signal not in BUILTIN_SIGNALS:
                errors.append(f"{where}: '{signal}' is not a built-in signal ({', '.join(BUILTIN_SIGNALS)}); "
                              "give it keywords")
        elif not isinstance(keywords, list) or not keywords or not all(isinstance(k, str) and k.strip()
                                                                       for k in keywords):
            errors.append(f"{where}.keywords: a non-empty list of texts")
        cleaned.append({k: v for k, v in rule.items()})
    if errors:
        raise RuleError(errors)
    return cleaned


@dataclass
class Score:
    points: int = 0
    tier: str = "cold"
    reasons: list[dict] = field(default_factory=list)


def tier_for(points: int, hot: int, warm: int) -> str:
    return "hot" if points >= hot else "warm" if points >= warm else "cold"


def score(caller_text: str, signals: set[str], rules=None, hot: int = DEFAULT_HOT, warm: int = DEFAULT_WARM) -> Score:
    """Points for each rule that matches once (a keyword said twice counts once)."""
    lowered = caller_text.lower()
    result = Score()
    for rule in rules if rules is not None else DEFAULT_RULES:
        keywords = rule.get("keywords")
        if keywords:
            hit = next((k for k in keywords if re.search(r"\b" + re.escape(k.lower()), lowered)), None)
            if hit is None:
                continue
            reason = {"signal": rule["signal"], "points": rule["points"], "matched": hit}
        elif rule["signal"] in signals:
            reason = {"signal": rule["signal"], "points": rule["points"]}
        else:
            continue
        result.points += rule["points"]
        result.reasons.append(reason)
    result.tier = tier_for(result.points, hot, warm)
    return result


def rules_for_bot(bot) -> tuple[list[dict], int, int]:
    """The bot's rules and thresholds, or the defaults."""
    from postcall.models import LeadScoringRules

    if bot is not None:
        config = LeadScoringRules.objects.filter(bot=bot).first()
        if config is not None:
            return config.rules, config.hot_threshold, config.warm_threshold
    return list(DEFAULT_RULES), DEFAULT_HOT, DEFAULT_WARM
