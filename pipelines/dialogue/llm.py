"""The LLM side of a text chat: the knowledge messages and one request through ``voicebot.llm_client``.

Used only when the engine asks for it (no scenario active, knowledge found, or
a bot without knowledge). Knowledge passages go into the last user message,
the same way the voice ``ScenarioProcessor`` injects them. Tools are offered
only to models known to call them (Ollama's llama3.1+, qwen2.5+, ...);
SmolLM2 gets none and nothing relies on them.
"""

from __future__ import annotations

import re

import httpx

from voicebot import llm_client
from voicebot.llm_client import Completion

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


LLMAnswer = Completion  # the chat's answer: text and tool calls


class ChatLLM:
    """The text chat's LLM: the call's prompt (``prompt.py``), through the platform's one client."""

    def __init__(self, base_url: str, model: str, *, system_prompt: str = "", temperature: float = 0.3,
                 max_tokens: int = 150, timeout: float = 30.0, client: httpx.Client | None = None):
        self.base_url = base_url
        self.model = model
        self.system_prompt = system_prompt
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.client = client
        self.requests = 0

    def messages(self, history: list[tuple[str, str]], question: str, passages: list[str]) -> list[dict]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        for role, text in history[-10:]:
            messages.append({"role": "user" if role == "caller" else "assistant", "content": text})
        messages.append({"role": "user", "content": question})
        return knowledge_messages(messages, passages)

    def answer(self, history: list[tuple[str, str]], question: str, passages: list[str],
               tools: list[dict] | None = None) -> LLMAnswer:
        """Raises ``LLMUnavailable`` on failure; the caller falls back."""
        self.requests += 1
        return llm_client.complete(
            self.messages(history, question, passages), model=self.model, max_tokens=self.max_tokens,
            temperature=self.temperature, timeout=self.timeout, base_url=self.base_url, client=self.client,
            tools=tools if tools and supports_tools(self.model) else None)
