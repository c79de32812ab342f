"""Blocks -> chunks that fit the embedding model's window, never across a section.

Sizes are counted in the embedding model's own word pieces, so a chunk is
embedded whole (all-MiniLM-L6-v2 ignores everything past 256). Each chunk
keeps the page it starts on and its section (the last heading); the section
title is put in front of the text that is embedded, and counted in the budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from knowledge.partition import Block

SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
MAX_SECTION_TOKENS = 32


@dataclass
class Chunk:
    text: str
    page: int
    section: str
    token_count: int

    def embedding_text(self) -> str:
        if self.section and not self.text.startswith(self.section):
            return f"{self.section}\n{self.text}"
        return self.text


@dataclass
class _Piece:
    text: str
    tokens: int
    page: int
    paragraph_start: bool


@dataclass
class _Builder:
    size: int
    overlap: int
    section: str = ""
    section_tokens: int = 0
    pieces: list = field(default_factory=list)
    chunks: list = field(default_factory=list)

    @property
    def budget(self) -> int:
        return self.size - self.section_tokens

    def used(self) -> int:
        return sum(p.tokens for p in self.pieces)

    def emit(self, keep_overlap: bool) -> None:
        if not self.pieces:
            return
        text = ""
        for piece in self.pieces:
            text += ("\n" if piece.paragraph_start else " ") + piece.text if text else piece.text
        self.chunks.append(Chunk(text, self.pieces[0].page, self.section, self.used() + self.section_tokens))
        carried, total = [], 0
        if keep_overlap:
            for piece in reversed(self.pieces):
                if total + piece.tokens > self.overlap:
                    break
                carried.insert(0, piece)
                total += piece.tokens
        self.pieces = carried

    def add(self, piece: _Piece) -> None:
        if self.pieces and self.used() + piece.tokens > self.budget:
            self.emit(keep_overlap=True)
            # The carried overlap must leave room for the new piece.
            while self.pieces and self.used() + piece.tokens > self.budget:
                self.pieces.pop(0)
        self.pieces.append(piece)


def _split_long(text: str, encoding, limit: int) -> list[tuple[str, int]]:
    """A sentence longer than the window, cut at word-piece boundaries into parts of ``limit``."""
    offsets = encoding.offsets
    parts = []
    for start in range(0, len(offsets), limit):
        window = offsets[start : start + limit]
        parts.append((text[window[0][0] : window[-1][1]].strip(), len(window)))
    return [(t, n) for t, n in parts if t]


def chunk_blocks(blocks: list[Block], tokenizer, size: int, overlap: int) -> list[Chunk]:
    """Pack sentences of ``blocks`` into chunks of at most ``size`` word pieces (section title included)."""
    builder = _Builder(size=size, overlap=overlap)
    for block in blocks:
        if block.heading:
            builder.emit(keep_overlap=False)
            builder.section = block.text[:500]
            builder.section_tokens = min(len(tokenizer.encode(block.text, add_special_tokens=False).ids) + 1,
                                         MAX_SECTION_TOKENS)
            continue
        sentences = [s.strip() for s in SENTENCE_SPLIT.split(block.text) if s and s.strip()]
        if not sentences:
            continue
        encodings = tokenizer.encode_batch(sentences, add_special_tokens=False)
        first = True
        for sentence, encoding in zip(sentences, encodings):
            parts = ([(sentence, len(encoding.ids))] if len(encoding.ids) <= builder.budget
                     else _split_long(sentence, encoding, builder.budget))
            for text, tokens in parts:
                builder.add(_Piece(text, tokens, block.page, paragraph_start=first))
                first = False
    builder.emit(keep_overlap=False)
    return builder.chunks
