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


# Models that cannot be trusted to restate a fact they were given (measured: the bundled
# SmolLM2-135M states the fact for about a third of knowledge questions): "automatic" answers
# from the documents' own words with them, and lets any bigger model phrase the answer.
WEAK_MODELS = ("smollm", "135m", "360m", "gemma-3-270m", "gemma3:270m", "qwen2.5:0.5b")


def resolve_answer_style(config) -> str:
    """``extractive`` or ``generative`` for this bot (``automatic`` decided by its model)."""
    style = getattr(config, "answer_style", "automatic") or "automatic"
    if style in ("extractive", "generative"):
        return style
    model = getattr(config, "llm_model", "") or _default_model()
    return "extractive" if any(weak in model.lower() for weak in WEAK_MODELS) else "generative"


def _default_model() -> str:
    try:
        from voicebot import llm_endpoint

        return llm_endpoint.default_model()
    except Exception:  # noqa: BLE001 - no Django here (pure tests): assume the bundled floor
        return "smollm2-135m"
