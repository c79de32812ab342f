"""The one prompt builder: what the LLM is told, the same in calls, chat and tests.

A chat predicts a call only if both send the model the same instructions and
the same reply budget, so the brevity rule and the token cap live here, not in
the transports.
"""

from __future__ import annotations

BREVITY = "You are on a phone call. Reply in one or two short sentences, plain words, no lists."
MAX_REPLY_TOKENS = 120  # a spoken reply of one or two sentences; more is never said


def system_instruction(config) -> str:
    prompt = (getattr(config, "system_prompt", "") or
              f"You are the phone assistant of {getattr(config, 'company_name', 'the company')}.").strip()
    return f"{prompt}\n{BREVITY}"


def reply_tokens(config) -> int:
    return min(int(getattr(config, "max_tokens", MAX_REPLY_TOKENS) or MAX_REPLY_TOKENS), MAX_REPLY_TOKENS)
