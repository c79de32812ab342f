"""The Asterisk wire formats without a call: chan_websocket control messages (plain text and JSON)
and the serializer, AudioSocket framing (good, truncated, oversized, unknown), peers and UUIDs."""

import asyncio
import audioop
import time
import uuid

import pytest
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)

from telephony.asterisk import audiosocket as wire
from telephony.asterisk.access import peer_allowed
from telephony.asterisk.chan_websocket import (
    JSON,
    PLAIN,
    AsteriskFrameSerializer,
    ControlError,
    MediaStart,
    format_command,
    parse_control,
)
from voicebot.asterisk_setup import audiosocket_dial, audiosocket_uuid, websocket_dial, websocket_uri

# As chan_websocket.c writes them (_create_event_MEDIA_START etc.), one per format.
PLAIN_START = ("MEDIA_START connection_id:e226e283-c90a-4ea9-9e37-389000b9ef47 channel:WebSocket/voicebot/0x7f3c "
               "channel_id:1733.12 format:ulaw optimal_frame_size:160 ptime:20")
JSON_START = ('{"event":"MEDIA_START","connection_id":"e226e283","channel":"WebSocket/voicebot/0x7f3c",'
              '"channel_id":"1733.12","format":"slin16","optimal_frame_size":640,"ptime":20,'
              '"channel_variables":{"CALLERID(num)":"+12125550199"}}')


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_plain_text_events_parse_as_the_driver_writes_them():
    start = MediaStart.from_control(parse_control(PLAIN_START))
    assert (start.connection_id, start.channel, start.channel_id) == (
        "e226e283-c90a-4ea9-9e37-389000b9ef47", "WebSocket/voicebot/0x7f3c", "1733.12")
    assert (start.format, start.optimal_frame_size, start.ptime, start.style, start.sample_rate) == (
        "ulaw", 160, 20, PLAIN, 8000)
    dtmf = parse_control("DTMF_END digit:# channel_id:1733.12")
    assert (dtmf.name, dtmf.fields["digit"]) == ("DTMF_END", "#")
    assert parse_control("MEDIA_XOFF").name == "MEDIA_XOFF"
    assert parse_control("MEDIA_MARK_PROCESSED reply-3").correlation_id == "reply-3"
    assert parse_control("MEDIA_BUFFERING_COMPLETED").correlation_id == ""
    status = parse_control("STATUS channel_id:1 queue_length:43 xon_level:800 xoff_level:900 queue_full:false "
                           "bulk_media:true media_paused:false")
    assert status.fields["queue_length"] == "43"


def test_json_events_parse_and_keep_their_style():
    start = MediaStart.from_control(parse_control(JSON_START))
    assert (start.format, start.optimal_frame_size, start.style, start.sample_rate) == ("slin16", 640, JSON, 16000)
    assert start.channel_variables == {"CALLERID(num)": "+12125550199"}
    dtmf = parse_control('{"event":"DTMF_END","channel_id":"1733.12","digit":"5"}')
    assert (dtmf.name, dtmf.fields["digit"], dtmf.style) == ("DTMF_END", "5", JSON)
    mark = parse_control('{"event":"MEDIA_MARK_PROCESSED","channel_id":"1","correlation_id":"m1"}')
    assert mark.correlation_id == "m1"


@pytest.mark.parametrize("text, problem", [
    ("", "empty"),
    ("{not json", "unreadable JSON"),
    ("[1, 2]", "must be an object"),
    ('{"event": 5}', "needs an 'event'"),
    ('{"channel_id": "1"}', "needs an 'event'"),
    ("hello, world!", "not a control message"),
])
def test_bad_control_messages_say_why(text, problem):
    with pytest.raises(ControlError, match=problem):
        parse_control(text)


def test_media_start_must_come_first_and_name_a_codec_we_convert():
    with pytest.raises(ControlError, match="expected MEDIA_START first"):
        MediaStart.from_control(parse_control("MEDIA_XON"))
    with pytest.raises(ControlError, match="'g722' is not supported"):
        MediaStart.from_control(parse_control("MEDIA_START connection_id:x channel:c format:g722 "
                                              "optimal_frame_size:160 ptime:20"))


def test_commands_in_both_formats_and_within_the_drivers_128_bytes():
    assert format_command("FLUSH_MEDIA", PLAIN) == "FLUSH_MEDIA"
    assert format_command("MARK_MEDIA", PLAIN, "greeting") == "MARK_MEDIA greeting"
    assert format_command("HANGUP", JSON) == '{"command":"HANGUP"}'
    assert format_command("MARK_MEDIA", JSON, "m1") == '{"command":"MARK_MEDIA","correlation_id":"m1"}'
    with pytest.raises(ValueError, match="over 128 bytes"):
        format_command("MARK_MEDIA", PLAIN, "x" * 130)


def serializer(start_text: str = PLAIN_START) -> AsteriskFrameSerializer:
    return AsteriskFrameSerializer(MediaStart.from_control(parse_control(start_text)))


def tone(seconds: float, rate: int = 16000) -> bytes:
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).tobytes()


def test_serializer_media_both_ways_in_the_channels_codec():
    async def scenario():
        s = serializer()
        out = [await s.serialize(OutputAudioRawFrame(audio=tone(0.045), sample_rate=16000, num_channels=1))
               for _ in range(5)]
        sent = [o for o in out if o]
        assert sent and all(isinstance(o, bytes) and len(o) % 160 == 0 for o in sent)  # whole ulaw frames only
        assert max(abs(v) for v in memoryview(audioop.ulaw2lin(b"".join(sent), 2)).cast("h")) > 4000
        inbound = [await s.deserialize(audioop.lin2ulaw(tone(0.02, 8000), 2)) for _ in range(50)]
        inbound = [f for f in inbound if f is not None]  # the stream resampler works in blocks of ~100 ms
        assert inbound and all(isinstance(f, InputAudioRawFrame) and f.sample_rate == 16000 for f in inbound)
        assert 44 * 640 <= sum(len(f.audio) for f in inbound) <= 50 * 640  # 1 s in, at 16 kHz
        j = serializer(JSON_START)
        slin = await j.serialize(OutputAudioRawFrame(audio=tone(0.04), sample_rate=16000, num_channels=1))
        assert slin == tone(0.04)  # slin16 is the pipeline's own format: 1280 bytes, two frames of 640
        assert (await j.deserialize(tone(0.02))).audio == tone(0.02)

    run(scenario())


def test_serializer_control_barge_in_dtmf_and_hangup():
    async def scenario():
        s, j = serializer(), serializer(JSON_START)
        assert await s.serialize(InterruptionFrame()) == "FLUSH_MEDIA"
        assert await j.serialize(InterruptionFrame()) == '{"command":"FLUSH_MEDIA"}'
        digit = await s.deserialize("DTMF_END digit:7 channel_id:1733.12")
        assert isinstance(digit, InputDTMFFrame) and digit.button.value == "7"
        digit = await j.deserialize('{"event":"DTMF_END","channel_id":"1733.12","digit":"*"}')
        assert digit.button.value == "*"
        assert await s.deserialize("DTMF_END digit:X channel_id:1") is None  # not a keypad key
        assert await s.deserialize("MEDIA_MARK_PROCESSED m1") is None
        assert await s.deserialize("{broken") is None  # logged, the call goes on
        # The bot ends the call: HANGUP once what Asterisk queued has played, and only once.
        for _ in range(5):
            await s.serialize(OutputAudioRawFrame(audio=tone(0.1), sample_rate=16000, num_channels=1))
        assert s.play_until - time.monotonic() > 0.3  # what Asterisk still has to play
        assert await s.serialize(EndFrame()) == "HANGUP"
        assert time.monotonic() >= s.play_until
        assert await s.serialize(CancelFrame()) is None
        j.peer_gone = True  # Asterisk hung up first: nothing to send
        assert await j.serialize(CancelFrame()) is None

    run(scenario())


def test_xoff_holds_bot_audio_until_xon_and_a_flush_drops_what_was_held():
    async def scenario():
        s = serializer()
        audio = OutputAudioRawFrame(audio=tone(0.1), sample_rate=16000, num_channels=1)
        assert [await s.serialize(audio) for _ in range(3)][-1]  # past the resampler's first block
        await s.deserialize("MEDIA_XOFF")
        held = asyncio.create_task(s.serialize(audio))
        await asyncio.sleep(0.3)
        assert not held.done()  # nothing goes to Asterisk while it is XOFF
        await s.deserialize("MEDIA_XON")
        assert await asyncio.wait_for(held, 1)
        await s.deserialize("MEDIA_XOFF")
        stale = asyncio.create_task(s.serialize(audio))
        await asyncio.sleep(0.05)
        assert await s.serialize(InterruptionFrame()) == "FLUSH_MEDIA"
        await s.deserialize("MEDIA_XON")  # Asterisk's next tick after the flush
        assert await asyncio.wait_for(stale, 1) is None  # held audio from before the barge-in is dropped

    run(scenario())


# --- AudioSocket framing -------------------------------------------------------------------------

def test_audiosocket_messages_encode_and_parse():
    stream = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
    data = (wire.encode(wire.KIND_UUID, stream.bytes) + wire.encode(wire.KIND_SLIN, b"\x01\x00" * 160)
            + wire.encode(wire.KIND_DTMF, b"5") + wire.encode(0x12, b"\0" * 640) + wire.HANGUP_FRAME)
    messages = wire.parse(data)
    assert [m.kind for m in messages] == [0x01, 0x10, 0x03, 0x12, 0x00]
    assert wire.read_uuid(messages[0]) == stream
    assert (messages[1].sample_rate, len(messages[1].payload)) == (8000, 320)
    assert messages[3].sample_rate == 16000 and wire.audio_kind(16000) == 0x12
    assert wire.HANGUP_FRAME == b"\x00\x00\x00"  # "Hangup indication, for instance, is 0x00 0x00 0x00"
    assert wire.encode(wire.KIND_SLIN, b"ab") == b"\x10\x00\x02ab"  # big-endian length


@pytest.mark.parametrize("data, problem", [
    (b"\x10\x01", "truncated AudioSocket header"),
    (b"\x10\x01\x40" + b"\0" * 100, "announced 320 bytes, got 100"),
    (b"\x10\xff\xff", "oversized AudioSocket message: kind 0x10 with 65535 bytes"),
    (b"\x42\x00\x01x", "unknown AudioSocket message kind 0x42"),
    (b"\x01\x00\x04abcd", "UUID is 16 bytes, got 4"),
    (b"\x03\x00\x02ab", "DTMF message is 1 byte, got 2"),
])
def test_bad_audiosocket_frames_say_what_is_wrong(data, problem):
    with pytest.raises(wire.AudioSocketError, match=problem):
        wire.parse(data)

    async def from_a_socket():
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        with pytest.raises(wire.AudioSocketError, match=problem):
            while await wire.read_message(reader) is not None:
                pass

    run(from_a_socket())


def test_a_connection_that_ends_between_messages_is_no_error():
    async def scenario():
        reader = asyncio.StreamReader()
        reader.feed_data(wire.HANGUP_FRAME)
        reader.feed_eof()
        assert (await wire.read_message(reader)).kind == wire.KIND_HANGUP
        assert await wire.read_message(reader) is None

    run(scenario())


class Refusing:
    """A runner that must not be asked: these connections fail before a call exists."""

    async def accept(self, start):
        raise AssertionError(f"the runner was asked about {start}")


@pytest.mark.parametrize("first", [b"\x42\x00\x00", b"\x10\x00\x02ab", b"\x01\x00\x10" + b"\0" * 4])
def test_audiosocket_server_hangs_up_cleanly_on_a_bad_first_frame(first):
    from telephony.asterisk import start_audiosocket_server

    async def scenario():
        server = await start_audiosocket_server(Refusing(), host="127.0.0.1", port=0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(first)
        await writer.drain()
        if first.startswith(b"\x01"):
            writer.write_eof()  # a UUID cut short
        answer = await asyncio.wait_for(reader.read(), 5)  # all of it, to EOF: the server closed
        writer.close()
        server.close()
        await server.wait_closed()
        return answer

    assert run(scenario()) == wire.HANGUP_FRAME


# --- who may connect, and the ids the PBX is given --------------------------------------------------

def test_peers_loopback_by_default_and_the_configured_networks_otherwise(settings):
    settings.ASTERISK_ALLOWED_PEERS = []
    assert peer_allowed("127.0.0.1") and peer_allowed("::1") and peer_allowed("::ffff:127.0.0.1")
    assert not peer_allowed("192.168.1.20") and not peer_allowed("") and not peer_allowed("not-an-ip")
    settings.ASTERISK_ALLOWED_PEERS = ["192.168.1.0/24", "10.0.0.5"]
    assert peer_allowed("192.168.1.20") and peer_allowed("10.0.0.5")
    assert not peer_allowed("10.0.0.6") and not peer_allowed("127.0.0.1")


def test_the_audiosocket_uuid_is_derived_from_the_stream_secret_and_the_dialplan_names_it():
    one, other = audiosocket_uuid("secret-one"), audiosocket_uuid("secret-two")
    assert one == audiosocket_uuid("secret-one") and one != other and isinstance(one, uuid.UUID)
    assert "secret-one" not in str(one)
    lines = audiosocket_dial("200", "secret-one", "10.0.0.2", 9092)
    assert f"AudioSocket({one},10.0.0.2:9092)" in lines and lines.startswith("exten => 200,1,Answer()")
    dial = websocket_dial("200", "s3cr3t")
    assert dial == ("exten => 200,1,Dial(WebSocket/voicebot/c(slin16)nv(secret=s3cr3t,"
                    "from=${URIENCODE(${CALLERID(num)})},to=${URIENCODE(${EXTEN})}))")
    assert websocket_uri("https://bots.example.com/") == "wss://bots.example.com/telephony/asterisk/media"
    assert websocket_uri("http://10.0.0.3:8080") == "ws://10.0.0.3:8080/telephony/asterisk/media"
