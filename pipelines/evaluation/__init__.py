"""The evaluation suite: `python manage.py evaluate SUITE.yaml [--bot SLUG] [--voice] [--json]`.

A suite (YAML) names a business (company, bot settings or an existing bot, documents),
questions with the facts their answers must state (or ``absent: true``), booking
dialogues with the fields they must end with, and conversation-rule cases. The
runner builds a throwaway company and bot, ingests the documents for real
(knowledge service -> pgvector), plays every case through the text chat
(``ChatSession``: the engine, knowledge and LLM of a call) or, with ``--voice``,
through ``simulate_call`` with the caller's turns spoken by Piper, scores the
replies and deletes the company again.

- ``suite``: loading and validation (``load_suite``; ``SuiteError`` names each place);
- ``scoring``: fact matching, don't-know, invented facts (``pipelines.dialogue.grounding``),
  bookings, end reasons, latency figures;
- ``business``: the throwaway company and bot, ingestion, the sources a reply may use, the LLM;
- ``text`` / ``voice``: the runners; ``report``: figures, the table and the JSON.
"""

from pipelines.evaluation.suite import Suite, SuiteError, load_suite

__all__ = ["Suite", "SuiteError", "load_suite"]
