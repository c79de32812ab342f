"""Every provider is an adapter (``telephony.providers.ADAPTERS``); the runner and the pipeline factory name none.

No models, no database: the adapters' parsing and documents, and the import rule.
"""

import ast
import re
from pathlib import Path

import pytest

from telephony.base import BUSY, UNKNOWN_NUMBER_APOLOGY, CallStart
from telephony.providers import ADAPTERS, BROWSER, ROOM, STREAM
from telephony.providers.adapter import BadCallStart
from voicebot.models import Call, PhoneNumber

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_NAMES = ("twilio", "telnyx", "plivo", "exotel", "daily")

SAMPLE_STARTS = {  # what each provider sends when a call starts (webhook form, or the stream start for Exotel)
    "twilio": {"CallSid": "CA1", "From": "+12125550199", "To": "+4930555000"},
    "telnyx": {"CallControlId": "v3:1", "CallSid": "v3:1", "From": "+12125550199", "To": "+4930555000"},
    "plivo": {"CallUUID": "pl-1", "From": "+12125550199", "To": "+4930555000"},
    "exotel": {"call_id": "ex-1", "stream_id": "st-1", "from": "+12125550199", "to": "+4930555000"},
    "daily": {"callId": "dy-1", "callDomain": "dom", "From": "+12125550199", "To": "+4930555000"},
    "webrtc": {"slug": "alpha-dental"},
}


def test_every_provider_has_an_adapter_of_a_known_kind():
    assert set(ADAPTERS) == {*PROVIDER_NAMES, "webrtc"} == set(SAMPLE_STARTS)
    for name, adapter in ADAPTERS.items():
        assert adapter.name == name and adapter.kind in (STREAM, ROOM, BROWSER)
        assert name in Call.Transport.values  # what a stored call's transport says
        if adapter.kind != BROWSER:
            assert name in PhoneNumber.Provider.values  # what routes a number to it


@pytest.mark.parametrize("name", sorted(SAMPLE_STARTS))
def test_every_adapter_yields_a_call_start(name):
    start = ADAPTERS[name].call_start(SAMPLE_STARTS[name])
    assert isinstance(start, CallStart) and start.provider == name and start.call_id
    if name != "webrtc":  # a browser call is picked by its link, not a number
        assert (start.from_, start.called_number) == ("+12125550199", "+4930555000")


@pytest.mark.parametrize("name", sorted(n for n, a in ADAPTERS.items() if a.kind != BROWSER))
def test_a_start_without_a_call_id_is_refused(name):
    with pytest.raises(ValueError):
        ADAPTERS[name].call_start({"From": "+1", "To": "+2", "from": "+1", "to": "+2"})


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_every_adapter_has_an_apology(name):
    for text in (UNKNOWN_NUMBER_APOLOGY, BUSY):
        assert text in ADAPTERS[name].apology(text)


@pytest.mark.parametrize("name", sorted(n for n, a in ADAPTERS.items() if a.kind == STREAM and a.webhook_path))
def test_stream_answers_connect_the_stream_with_its_token(name):
    adapter = ADAPTERS[name]
    answer = adapter.answer("wss://runner.example" + adapter.stream_path, "tok-1")
    assert answer.startswith("<?xml") and "wss://runner.example" + adapter.stream_path in answer and "tok-1" in answer
    assert adapter.apology("Sorry & goodbye").count("Sorry &amp; goodbye") == 1  # an XML document


@pytest.mark.parametrize("name", sorted(n for n, a in ADAPTERS.items() if a.kind == STREAM))
def test_stream_adapters_build_a_serializer_for_their_start(name):
    serializer = ADAPTERS[name].serializer({"call_id": "c-1", "stream_id": "s-1"})
    assert type(serializer).__name__.lower().startswith(name)


def test_bad_webhooks_name_what_is_missing():
    with pytest.raises(BadCallStart, match="CallSid missing"):
        ADAPTERS["twilio"].call_start({"To": "+1"})
    with pytest.raises(BadCallStart, match="callId"):
        ADAPTERS["daily"].call_start({"To": "+1", "From": "+2"})


def test_the_runner_mounts_every_adapters_routes():
    from pipelines.live.runner import create_app

    paths = {route.path for route in create_app(preload=False).routes}
    for adapter in ADAPTERS.values():
        declared = [getattr(adapter, attr, None) for attr in ("webhook_path", "stream_path", "page_path", "offer_path")]
        assert {p for p in declared if p} | {r.path for r in adapter.routes} <= paths, adapter.name


@pytest.mark.parametrize("module", ["pipelines/live/runner.py", "pipelines/live/factory.py"])
def test_the_runner_and_the_factory_name_no_provider(module):
    source = (ROOT / module).read_text().lower()
    named = [name for name in PROVIDER_NAMES if re.search(name, source)]
    assert named == [], f"{module} names {named}: provider specifics belong in telephony/providers/"


def test_telephony_imports_no_pipelines():
    """DESIGN.md: pipelines -> telephony -> voicebot, never back (not even lazily)."""
    offenders = []
    for path in sorted((ROOT / "telephony").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "pipelines"]
    assert offenders == []
