"""Fixtures of the knowledge tests: sample documents in every format, in-process ingestion."""

import pytest

from knowledge.sample_docs import WRITERS

PAGES = [
    [("h", "Price list"),
     ("p", "Manicure costs 25 dollars. Gel polish costs 35 dollars. A pedicure costs 40 dollars.")],
    [("h", "Opening hours"),
     ("p", "We are open Monday to Friday from 9 am to 7 pm and on Saturday from 10 am to 4 pm.")],
]


@pytest.fixture(scope="session")
def sample_files():
    """{file type: (name, bytes)} of the same two-page document in each format (plus a CSV price list)."""
    files = {kind: (f"salon-{kind}.{kind}", write(PAGES)) for kind, write in WRITERS.items()}
    files["csv"] = ("salon-prices.csv", b"service,price\nmanicure,25 dollars\ngel polish,35 dollars\n"
                                        b"pedicure,40 dollars\n")
    return files


@pytest.fixture(scope="session")
def embedder():
    """The process's embedder, loaded once for the session."""
    from knowledge.embeddings import get_embedder

    return get_embedder()
