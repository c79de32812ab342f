"""Who may not reach a bot through Asterisk: peers outside ASTERISK_ALLOWED_PEERS, wrong secrets and
UUIDs, calls the runner refuses (HANGUP / 0x00 at once). No models: nothing gets as far as a pipeline."""

import asyncio
import uuid

import pytest
import websockets

from telephony.asterisk import audiosocket as wire
from telephony.base import Refusal
from tests.calls.conftest import number_for
from tests.telephony.asterisk_client import AsteriskEndpoints, AudioSocketChannel, ChanWebsocketChannel
from voicebot.asterisk_setup import audiosocket_uuid

pytestmark = pytest.mark.django_db(transaction=True)


class Busy:
    """The runner's answer when every line is taken (``CallHub.accept`` -> ``Refusal``)."""

    def __init__(self):
        self.starts = []

    async def accept(self, start):
        self.starts.append(start)
        return Refusal("busy", "Sorry, all our lines are busy.")


@pytest.fixture
def endpoints():
    from pipelines.live.runner import CallHub

    with AsteriskEndpoints(CallHub()) as served:
        yield served


@pytest.fixture
def busy():
    runner = Busy()
    with AsteriskEndpoints(runner) as served:
        served.busy = runner
        yield served


@pytest.fixture
def pbx_number(bot_a):
    return number_for(bot_a, "asterisk", "200")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def refused_status(url: str) -> int:
    async def connect():
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, subprotocols=["media"]):
                pass
        return refused.value.response.status_code

    return run(connect())


def test_a_wrong_or_missing_secret_is_refused_before_the_upgrade(endpoints, pbx_number):
    assert refused_status(endpoints.ws_url(secret="not-the-secret", to="200")) == 403
    assert refused_status(endpoints.ws_url(to="200")) == 403
    other = number_for(pbx_number.bot, "exotel", "+4930555111")  # another provider's number: not routable here
    assert refused_status(endpoints.ws_url(secret=other.stream_secret)) == 403


def test_a_peer_outside_the_allowed_networks_is_refused(endpoints, pbx_number, settings):
    settings.ASTERISK_ALLOWED_PEERS = ["10.20.0.0/16"]  # the PBX's network; this test connects from loopback
    assert refused_status(endpoints.ws_url(secret=pbx_number.stream_secret)) == 403

    async def audiosocket():
        reader, writer = await asyncio.open_connection("127.0.0.1", endpoints.audiosocket_port)
        writer.write(wire.encode(wire.KIND_UUID, audiosocket_uuid(pbx_number.stream_secret).bytes))
        try:
            answer = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:  # closed with our UUID unread
            answer = b""
        writer.close()
        return answer

    assert run(audiosocket()) == b""  # closed without a word


def test_an_unknown_audiosocket_uuid_is_hung_up(endpoints, pbx_number):
    async def scenario():
        channel = await AudioSocketChannel("127.0.0.1", endpoints.audiosocket_port, uuid.uuid4()).connect()
        await asyncio.wait_for(channel.closed.wait(), 5)
        return channel

    channel = run(scenario())
    assert channel.hangup_received and [kind for _, kind, _ in channel.messages] == [wire.KIND_HANGUP]


def test_a_call_the_runner_refuses_gets_hangup_at_once(busy, pbx_number):
    async def scenario():
        ws_channel = await ChanWebsocketChannel(busy.ws_url(secret=pbx_number.stream_secret, to="200",
                                                            **{"from": "+12125550199"})).connect()
        await asyncio.wait_for(ws_channel.closed.wait(), 5)
        as_channel = await AudioSocketChannel("127.0.0.1", busy.audiosocket_port,
                                              audiosocket_uuid(pbx_number.stream_secret)).connect()
        await asyncio.wait_for(as_channel.closed.wait(), 5)
        return ws_channel, as_channel

    ws_channel, as_channel = run(scenario())
    assert ws_channel.command_names() == ["HANGUP"] and not ws_channel.answered and not ws_channel.media
    assert ws_channel.ws.close_code in (1000, 1008)
    assert [kind for _, kind, _ in as_channel.messages] == [wire.KIND_HANGUP]
    ws_start, as_start = busy.busy.starts
    assert (ws_start.provider, ws_start.number, ws_start.from_, ws_start.to) == ("asterisk", "200", "+12125550199",
                                                                               "200")
    assert ws_start.call_id == ws_channel.channel_id  # Asterisk's channel uniqueid, as MEDIA_START gave it
    assert (as_start.provider, as_start.number) == ("asterisk", "200") and as_start.call_id.startswith("audiosocket-")
