"""Calls the platform places over SIP: the dial task asks the runner, whose SIP endpoint INVITEs a
real SIP phone (SIPp as the callee, tests/calls/sip/callee_*.xml), then runs the call's pipeline."""

import subprocess

import pytest

from telephony.tasks import dial_call
from tests.calls.conftest import number_for
from tests.calls.sip_clients import SCENARIOS, have
from tests.calls.test_sip_calls import udp_port_taken
from tests.ports import free_port
from tests.waiting import wait_until
from voicebot.models import Call

pytestmark = [
    pytest.mark.models, pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not have("sipp"), reason="needs SIPp (make sip-clients)"),
]

CALLER_ID = "+15550100888"
CALLEE = "+15550100999"


@pytest.fixture
def callee(runner, tmp_path, settings):
    """Start SIPp as the callee with ``scenario``; the endpoint reaches numbers at it (VOICEBOT_SIP_OUTBOUND_URI)."""
    procs = []

    def start(scenario: str, hold_ms: int = 0) -> tuple[subprocess.Popen, object]:
        port = free_port()
        settings.SIP_OUTBOUND_URI = f"sip:{{number}}@127.0.0.1:{port}"
        messages = tmp_path / f"{scenario}.msg"
        proc = subprocess.Popen(
            ["sipp", "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port), "-mp", str(port + 2),
             "-m", "1", "-d", str(hold_ms), "-nostdin", "-timeout", "40s", "-timeout_error", "-trace_msg",
             "-message_file", str(messages), "-trace_err", "-error_file", str(tmp_path / f"{scenario}.err")],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        procs.append(proc)
        wait_until(lambda: udp_port_taken(port), 10, what="SIPp's callee to listen")
        return proc, messages

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture
def agent(runner):
    _, hub = runner
    return next(listener for listener in hub.listeners if listener.name == "sip")


def freed(agent) -> bool:
    """The ended call left PJSIP's books and was freed on the SIP thread (never by a GC elsewhere)."""
    return not agent.calls and not agent.graveyard


@pytest.fixture
def placed(desk_bot):
    desk_bot.greeting = "Hi {{name}}, this is the front desk calling about your visit."
    desk_bot.outbound_greeting_wait_sec = 1.0
    desk_bot.save()
    number_for(desk_bot, "sip", CALLER_ID)
    return Call.objects.create(company=desk_bot.company, bot=desk_bot, transport="sip", direction="outbound",
                               status="queued", from_number=CALLER_ID, to_number=CALLEE, variables={"name": "Dana"})


def test_the_endpoint_calls_a_sip_phone_greets_by_name_after_the_answer_and_stores_the_call(callee, placed, agent):
    sipp, messages = callee("callee_answers.xml", hold_ms=6000)
    assert dial_call(placed.pk) == "queued"
    assert sipp.wait(40) == 0, sipp.stdout.read()[-2000:] + sipp.stderr.read()[-2000:]
    call = wait_until(lambda: Call.objects.filter(pk=placed.pk).exclude(end_reason="").first(), 20,
                      what="the placed call to be stored")
    assert (call.status, call.end_reason, call.direction) == ("completed", "caller_hangup", "outbound")
    assert call.answered_at is not None and call.external_id  # the SIP Call-ID
    bot_turns = [turn.text for turn in call.turns.filter(role="bot")]
    assert bot_turns and bot_turns[0].startswith("Hi Dana, this is the front desk")
    assert call.metrics["opening"]["greeting"] == "after silence"  # the callee said nothing: greeted after 1 s
    invite = messages.read_text().split("INVITE sip:", 1)[1]
    assert f"INVITE sip:{CALLEE}@" in "INVITE sip:" + invite.split("\n", 1)[0]
    assert f"P-Asserted-Identity: <sip:{CALLER_ID}@" in invite
    wait_until(lambda: freed(agent), 5, what="the placed call's PJSIP object to be freed")


def test_a_busy_sip_phone_ends_the_call_as_busy(callee, placed, agent):
    sipp, _ = callee("callee_busy.xml")
    assert dial_call(placed.pk) == "queued"
    assert sipp.wait(30) == 0
    call = wait_until(lambda: Call.objects.filter(pk=placed.pk, status="busy").first(), 15,
                      what="the placed call to end busy")
    assert call.end_reason == "not_answered" and "SIP 486" in call.metrics["notes"]
    assert not call.turns.exists()
    wait_until(lambda: freed(agent), 5, what="the refused call's PJSIP object to be freed")
