"""One partial HNSW index per embedding dimension in use.

``knowledge_chunk.embedding`` is a ``vector`` without a fixed dimension, so a
model change (384 -> 768) needs no schema change. pgvector indexes only fixed
dimensions, hence an expression index ``(embedding::vector(N))`` restricted to
rows of that dimension; searches use the same expression and predicate.
"""

from __future__ import annotations

from django.db import connection

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


def index_name(dim: int) -> str:
    return f"knowledge_chunk_hnsw_{int(dim)}"


def create_index_sql(dim: int) -> str:
    dim = int(dim)
    return (
        f"CREATE INDEX IF NOT EXISTS {index_name(dim)} ON knowledge_knowledgechunk "
        f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE embedding_dim = {dim}"
    )


def drop_index_sql(dim: int) -> str:
    return f"DROP INDEX IF EXISTS {index_name(dim)}"


def ensure_index(dim: int) -> None:
    """Create the index for ``dim`` unless it exists (checked first: CREATE INDEX locks the table)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [index_name(dim)])
        if cursor.fetchone() is None:
            if connection.in_atomic_block:  # PostgreSQL refuses CREATE INDEX with deferred checks pending
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(create_index_sql(dim))
