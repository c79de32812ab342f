"""Chunks fit the embedding model's window and keep page and section."""

from knowledge.chunking import chunk_blocks
from knowledge.embeddings import SPECIAL_TOKENS, chunk_budget, wordpiece_tokenizer
from knowledge.partition import Block, settle_headings


def tokens(text):
    return len(wordpiece_tokenizer().encode(text, add_special_tokens=False).ids)


def test_chunk_size_follows_the_model(settings):
    class Model:
        window = 256

    settings.KNOWLEDGE_CHUNK_TOKENS = 0
    settings.KNOWLEDGE_CHUNK_OVERLAP = 0
    assert chunk_budget(Model) == (256 - SPECIAL_TOKENS, 25)
    Model.window = 512
    assert chunk_budget(Model) == (510, 51)
    settings.KNOWLEDGE_CHUNK_TOKENS = 1000  # never more than the model reads
    assert chunk_budget(Model)[0] == 510


def test_chunks_fit_window_overlap_and_never_cross_sections():
    sentences = [f"Sentence number {i} tells about treatment {i} and its price of {i * 3} dollars." for i in range(60)]
    blocks = [Block("Treatments", 1, heading=True), Block(" ".join(sentences[:40]), 1), Block(" ".join(sentences[40:]), 2),
              Block("Opening hours", 3, heading=True), Block("We open at nine.", 3)]
    chunks = chunk_blocks(blocks, wordpiece_tokenizer(), size=100, overlap=20)
    for chunk in chunks:
        assert tokens(chunk.embedding_text()) <= 100 + 1  # the newline after the section title
        assert chunk.token_count <= 100
    treatment_chunks = [c for c in chunks if c.section == "Treatments"]
    assert len(treatment_chunks) > 3
    # Consecutive chunks of a section overlap by whole sentences.
    first, second = treatment_chunks[0].text, treatment_chunks[1].text
    assert second.split(". ")[0] in first
    assert chunks[-1].section == "Opening hours" and chunks[-1].text == "We open at nine." and chunks[-1].page == 3
    assert {c.page for c in treatment_chunks} == {1, 2}
    # Every sentence lands in some chunk.
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)


def test_a_sentence_longer_than_the_window_is_cut():
    long = " ".join(f"word{i}" for i in range(400))
    chunks = chunk_blocks([Block(long, 1)], wordpiece_tokenizer(), size=64, overlap=0)
    assert len(chunks) > 4 and all(c.token_count <= 64 for c in chunks)


def test_runs_of_short_lines_are_text_not_headings():
    blocks = settle_headings([Block("Prices", 1, True), Block("Manicure 25", 1, True), Block("Pedicure 40", 1, True),
                              Block("Nails", 1, True), Block("Gel is extra.", 1)])
    assert [(b.text, b.heading) for b in blocks] == [
        ("Prices", False), ("Manicure 25", False), ("Pedicure 40", False), ("Nails", True), ("Gel is extra.", False)]
    assert settle_headings([Block("Salon", 1, True), Block("Hair", 1, True), Block("Cut.", 1)])[0].text == "Salon > Hair"


def test_pdf_headings_are_found_by_font_size_even_on_a_short_page():
    from knowledge.partition import partition
    from knowledge.sample_docs import pdf_bytes

    data = pdf_bytes([[("h", "Salon price list 2026"), ("h", "Nails"), ("p", "Classic manicure 25 dollars.")]])
    blocks, pages = partition("pdf", "prices.pdf", data)
    assert pages == 1
    assert [(b.text, b.heading) for b in blocks] == [("Salon price list 2026 > Nails", True),
                                                     ("Classic manicure 25 dollars.", False)]
