"""Speak the first clause early: a text aggregator that releases the reply's first clause.

Pipecat's TTS waits for a whole sentence. With a small LLM on 2 shared cores a
20-word first sentence costs a second or more before Piper starts; the first
clause ("Sure, ...", "We open at 8,") is enough to start speaking. After the
first chunk, whole sentences again (Piper's prosody is better on sentences).
"""

from __future__ import annotations

from typing import AsyncIterator

from pipecat.utils.text.base_text_aggregator import Aggregation, TextType
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator

CLAUSE_END = ",;:"


class FirstClauseTextAggregator(SimpleTextAggregator):
    def __init__(self, *, min_words: int = 2, max_words: int = 4, **kwargs):
        super().__init__(**kwargs)
        self._min_words = min_words
        self._max_words = max_words
        self._first_done = False

    async def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        for char in text:
            async for out in super().aggregate(char):
                self._first_done = True
                yield out
            if self._first_done:
                continue
            words = len(self._text.split())
            clause = char in CLAUSE_END and words >= self._min_words
            long_run = char == " " and words >= self._max_words
            if clause or long_run:
                chunk = self._text.strip(" ")
                self._text = ""
                self._first_done = True
                yield Aggregation(text=chunk, type=TextType.SENTENCE)

    async def flush(self):
        result = await super().flush()
        self._first_done = False
        return result

    async def reset(self):
        await super().reset()
        self._first_done = False

    async def handle_interruption(self):
        await super().handle_interruption()
        self._first_done = False
