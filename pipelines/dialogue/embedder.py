"""The matcher's ``embed(texts) -> unit vectors``: the knowledge app's process-wide embedder.

One model per process serves both retrieval and scenario matching, so a call
never loads a second copy.
"""

from __future__ import annotations


def default_embedder():
    from knowledge.embeddings import get_embedder

    return get_embedder().embed
