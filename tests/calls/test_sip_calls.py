"""The SIP endpoint end to end, called by real SIP clients from Debian: baresip and SIPp.

The runner fixture starts the endpoint (PJSIP) on a free loopback port. baresip
speaks a recorded question as RTP and records the bot's RTP; SIPp scenarios
(tests/calls/sip/) send RFC 4733 DTMF from SIPp's own pcaps, see the REFER that
"talk to a human" produces, accept or decline it, and check refusals.
"""

import socket
import subprocess
import threading

import numpy as np
import pytest

from pipelines.live.factory import TRANSFER_FAILED
from tests.calls.conftest import audio, number_for
from tests.calls.sip_clients import SCENARIOS, baresip_call, caller_wav, have, mulaw_wav, sipp, speech_spans
from tests.ports import free_port
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.models, pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (have("baresip") and have("sipp")), reason="needs baresip and SIPp (make sip-clients)"),
]

NUMBER = "+15550100777"


@pytest.fixture
def sip(runner, desk_bot):
    """(agent, "127.0.0.1:port") of the runner's SIP endpoint, with the desk bot on a sip number."""
    _, hub = runner
    number_for(desk_bot, "sip", NUMBER)
    agent = next(listener for listener in hub.listeners if listener.name == "sip")
    return agent, f"127.0.0.1:{agent.settings.port}"


def sipp_completes(scenario: str, target: str, **kwargs) -> None:
    """Run a SIPp scenario; it must reach its end (every message it expects arrived)."""
    result = sipp(scenario, target, **kwargs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def stored_sip_call(marker: str, timeout: float = 30.0):
    """The stored Call whose caller URI contains ``marker`` (each test calls from its own port)."""
    from voicebot.models import Call

    return wait_until(lambda: list(Call.objects.filter(transport="sip", from_number__contains=marker)),
                      timeout, what=f"the SIP call from {marker} to be stored")


def transcribe(samples: np.ndarray, rate: int) -> str:
    from pipelines.live.whisper_window import transcribe_utterance
    from pipelines.model_registry import registry

    x = samples.astype(np.float32) / 32768.0
    if rate != 16000:
        x = np.interp(np.linspace(0, len(x) - 1, int(len(x) * 16000 / rate)), np.arange(len(x)), x).astype(np.float32)
    return transcribe_utterance(registry.whisper(""), x, pad_secs=None).text


def test_baresip_call_hears_greeting_and_answer(sip, tmp_path):
    agent, target = sip
    port = free_port()
    question = audio("caller_hours.wav")
    caller = caller_wav(tmp_path / "caller.wav", [5.0, question, 9.0])
    result = baresip_call(tmp_path, f"sip:{NUMBER}@{target}", caller, seconds=40, local_port=port)
    assert "Call established" in result.log, result.log[-2000:]

    spans = speech_spans(result.heard, result.heard_rate)
    assert len(spans) >= 2, spans
    greeting, reply = spans[0], spans[1]  # (then, after the desk bot's 4 s of silence, its re-prompt)
    assert greeting[0] < 3.0 and greeting[1] - greeting[0] > 1.2, spans  # "Hello, Alpha Dental, how can I help?"
    assert reply[0] > 5.0 and reply[1] - reply[0] > 1.0, spans  # after the question, something was said
    rate = result.heard_rate
    heard_greeting = transcribe(result.heard[int(greeting[0] * rate):int(greeting[1] * rate) + rate // 2], rate)
    assert "dental" in heard_greeting.lower(), heard_greeting

    [call] = stored_sip_call(f"sip:caller{port}@127.0.0.1")  # From and To as the caller sent them
    assert f"sip:{NUMBER}@" in call.to_number
    assert call.end_reason == "caller_hangup"  # baresip hung up when its file ended: one BYE, one record
    turns = list(call.turns.order_by("index").values_list("role", "text"))
    assert turns[0] == ("bot", "Hello, Alpha Dental, how can I help?"), turns
    assert any(role == "caller" and "open" in text.lower() for role, text in turns), turns
    assert call.recording, "the call's audio is recorded"
    assert agent.status()["answered"] >= 1 and agent.status()["active_calls"] == 0
    wait_until(lambda: not agent.graveyard, 5, what="the ended call's PJSIP object to be freed")


def test_dtmf_and_talk_to_a_human_give_a_refer(sip, tmp_path):
    _, target = sip
    port = free_port()
    mulaw_wav(tmp_path / "question.wav", [audio("caller_human.wav"), 8.0])
    sipp_completes("refer_accept.xml", target, workdir=tmp_path, local_port=port, service=NUMBER, timeout=60)

    [call] = stored_sip_call(f"sip:caller{port}@127.0.0.1")
    assert call.status == "transferred" and call.end_reason == "transfer"
    assert call.metrics["transferred_to"] == "+4930999999"
    texts = list(call.turns.values_list("text", flat=True))
    assert "[DTMF 5]" in texts, texts  # the RFC 4733 digit SIPp sent reached the call record
    assert call.metrics.get("dtmf") == "5"


def test_declined_refer_is_apologised_for_then_bot_hangs_up(sip, tmp_path):
    _, target = sip
    port = free_port()
    mulaw_wav(tmp_path / "question.wav", [audio("caller_human.wav"), 15.0])
    sipp_completes("refer_decline.xml", target, workdir=tmp_path, local_port=port, service=NUMBER, timeout=60)  # it received the bot's BYE

    [call] = stored_sip_call(f"sip:caller{port}@127.0.0.1")
    assert call.status == "completed"
    assert any("transfer failed" in note for note in call.metrics["notes"]), call.metrics["notes"]
    assert TRANSFER_FAILED in list(call.turns.values_list("text", flat=True))


def test_goodbye_ends_the_call_with_one_bye_from_the_bot(sip, tmp_path):
    _, target = sip
    port = free_port()
    mulaw_wav(tmp_path / "question.wav", [audio("caller_bye.wav"), 15.0])
    sipp_completes("bye_from_bot.xml", target, workdir=tmp_path, local_port=port, service=NUMBER, timeout=60)
    calls = stored_sip_call(f"sip:caller{port}@127.0.0.1")
    assert len(calls) == 1 and calls[0].end_reason != "caller_hangup", [(c.end_reason, c.status) for c in calls]
    messages = (tmp_path / "bye_from_bot.xml.msg").read_text()
    assert messages.count("BYE sip:") == 1, "exactly one BYE, from the bot"


def _refused(target, tmp_path, service, *, tcp: bool = False) -> str:
    port = free_port()
    sipp_completes("refused.xml", target, workdir=tmp_path, local_port=port, service=service, timeout=20, tcp=tcp)
    return (tmp_path / "refused.xml.msg").read_text()


def test_unknown_peer_number_and_full_lines_are_refused(sip, runner, tmp_path, settings):
    from voicebot.models import Call

    agent, target = sip
    _, hub = runner
    assert "SIP/2.0 404" in _refused(target, tmp_path / "unknown", "+19995550000")
    assert "SIP/2.0 404" in _refused(target, tmp_path / "tcp", "+19995550001", tcp=True)  # SIP over TCP too

    settings.CALLS_MAX_CONCURRENT = 0  # every line of the runner is taken
    assert "SIP/2.0 486" in _refused(target, tmp_path / "busy", NUMBER)
    settings.CALLS_MAX_CONCURRENT = 8

    allowed = agent.settings.allowed_peers
    agent.settings.allowed_peers = ["10.20.30.0/24"]  # loopback is no longer a configured peer
    try:
        assert "SIP/2.0 403" in _refused(target, tmp_path / "peer", NUMBER)
    finally:
        agent.settings.allowed_peers = allowed
    assert not Call.objects.filter(transport="sip").exists()
    assert hub.gate.active == 0
    status = agent.status()
    assert status["refused_peer"] >= 1 and status["unknown_number"] >= 1 and status["busy"] >= 1


@pytest.fixture
def tmp_path(tmp_path):
    for name in ("unknown", "tcp", "busy", "peer"):
        (tmp_path / name).mkdir()
    return tmp_path


def test_healthz_reports_the_sip_endpoint(runner, sip):
    import httpx

    base, _ = runner
    health = httpx.get(base + "/healthz").json()
    assert health["sip"]["ok"] is True and health["sip"]["listening"] == sip[1]


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _on_runner_loop(agent, coro, timeout: float = 10.0):
    import asyncio

    return asyncio.run_coroutine_threadsafe(coro, agent.loop).result(timeout)


def test_cancel_before_answer_frees_the_line(sip, runner, tmp_path):
    from voicebot.models import Call

    agent, target = sip
    _, hub = runner
    resolve = hub.resolve_number
    cancelled, routed = threading.Event(), threading.Event()

    def routing_after_the_cancel(number):  # the INVITE is still ringing when the caller gives up
        cancelled.wait(20)
        try:
            return resolve(number)
        finally:
            routed.set()

    hub.resolve_number = routing_after_the_cancel
    try:
        port = free_port()
        sipp_completes("cancel.xml", target, workdir=tmp_path, local_port=port, service=NUMBER, timeout=20)  # 200 to CANCEL, 487
        cancelled.set()
        assert routed.wait(10)
    finally:
        cancelled.set()
        hub.resolve_number = resolve
    # Routing finished after the CANCEL and took a line: it is given back, and no call runs.
    wait_until(lambda: hub.gate.active == 0 and agent.status()["active_calls"] == 0, 5,
               what="the cancelled call's line to be given back")
    assert not Call.objects.filter(transport="sip").exists()


def test_registers_with_a_pbx_as_an_extension(sip, tmp_path):
    from telephony.sip.agent import Registration

    agent, _ = sip
    port = free_port()
    sipp_proc = subprocess.Popen(
        ["sipp", "-sf", str(SCENARIOS / "registrar.xml"), "-i", "127.0.0.1", "-p", str(port), "-m", "1",
         "-nostdin", "-timeout", "20s", "-trace_msg", "-message_file", str(tmp_path / "registrar.msg")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_until(lambda: udp_port_taken(port), 10, what="SIPp's registrar to listen")
    _on_runner_loop(agent, agent.register(Registration(
        registrar=f"sip:127.0.0.1:{port}", user="200", password="extension-secret", expires_sec=120, number=NUMBER)))
    out, _ = sipp_proc.communicate(timeout=30)
    assert sipp_proc.returncode == 0, out[-3000:]
    wait_until(lambda: agent.status().get("registrations", [{}])[-1].get("registered"), 5,
               what="the registration to be confirmed")
    [registration] = [r for r in agent.status()["registrations"] if r["registrar"].endswith(f":{port}")]
    assert registration["registered"] and registration["code"] == 200, registration
    messages = (tmp_path / "registrar.msg").read_text()
    assert 'Authorization: Digest username="200"' in messages and 'realm="pbx.test"' in messages
