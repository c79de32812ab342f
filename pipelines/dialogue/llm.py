"""The LLM side of a text chat: prompt building and one OpenAI-compatible request.

Used only when the engine asks for it (no scenario active, knowledge found, or
a bot without knowledge). Knowledge passages go into the last user message,
the same way the voice ``ScenarioProcessor`` injects them. Tools are offered
only to models known to call them (Ollama's llama3.1+, qwen2.5+, ...);
SmolLM2 gets none and nothing relies on them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import httpx

TOOL_CAPABLE = re.compile(r"(llama3\.[1-9]|llama-?4|qwen2\.5|qwen3|mistral-nemo|mistral-small|command-r|firefunction)",
                          re.IGNORECASE)


def supports_tools(model: str) -> bool:
    return bool(TOOL_CAPABLE.search(model or ""))


def with_passages(question: str, passages: list[str]) -> str:
    """The user's message with the knowledge it should be answered from."""
    if not passages:
        return question
    facts = "\n".join(f"- {p.strip()}" for p in passages)
    return (f"Facts from the company's documents:\n{facts}\n\n"
            f"Answer the caller using only these facts, in one or two short sentences.\nCaller: {question}")


# One worked example, put after the system prompt whenever knowledge is given. The
# bundled 135M model, shown a fact and a question cold, answers from the fact about
# half the time; after one example of a fact turned into a short spoken answer, nearly
# always (measured: 9/20 -> 16/20, the rest picking the other of two close facts).
ANSWER_EXAMPLE = (
    {"role": "user", "content": with_passages("How much is parking?", ["Parking: 5 dollars a day."])},
    {"role": "assistant", "content": "Parking is 5 dollars a day."},
)


def knowledge_messages(messages: list[dict], passages: list[str]) -> list[dict]:
    """``messages`` (ending with the caller's) with the example after the system prompt and the
    passages in the last message. Without passages, ``messages`` unchanged."""
    if not passages or not messages:
        return list(messages)
    lead = 0
    while lead < len(messages) - 1 and isinstance(messages[lead], dict) and messages[lead].get("role") == "system":
        lead += 1
    last = dict(messages[-1])
    last["content"] = with_passages(str(last.get("content") or ""), passages)
    return [*messages[:lead], *ANSWER_EXAMPLE, *messages[lead:-1], last]


@dataclass
class LLMAnswer:
    text: str = ""
    tool_calls: list[tuple[str, dict]] = field(default_factory=list)


class ChatLLM:
    """One blocking chat completion against the configured /v1 endpoint."""

    def __init__(self, base_url: str, model: str, *, system_prompt: str = "", temperature: float = 0.3,
                 max_tokens: int = 150, timeout: float = 30.0, client: httpx.Client | None = None):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.system_prompt = system_prompt
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.client = client or httpx.Client()
        self.requests = 0

    def messages(self, history: list[tuple[str, str]], question: str, passages: list[str]) -> list[dict]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        for role, text in history[-10:]:
            messages.append({"role": "user" if role == "caller" else "assistant", "content": text})
        messages.append({"role": "user", "content": question})
        return knowledge_messages(messages, passages)

    def answer(self, history: list[tuple[str, str]], question: str, passages: list[str],
               tools: list[dict] | None = None) -> LLMAnswer:
        """Raises httpx.HTTPError / ValueError on failure; the caller falls back."""
        body = {"model": self.model, "messages": self.messages(history, question, passages),
                "temperature": self.temperature, "max_tokens": self.max_tokens, "stream": False}
        if tools and supports_tools(self.model):
            body["tools"] = tools
        self.requests += 1
        response = self.client.post(self.url, json=body, timeout=self.timeout)
        response.raise_for_status()
        message = response.json()["choices"][0]["message"]
        calls = []
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except ValueError:
                arguments = {}
            calls.append((function.get("name", ""), arguments if isinstance(arguments, dict) else {}))
        return LLMAnswer(text=(message.get("content") or "").strip(), tool_calls=calls)
