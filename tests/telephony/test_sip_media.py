"""The SIP call's audio bridge without a network: barge-in empties the playout at once, the bot's
audio goes out in whole 20 ms frames, the caller's frames reach the pipeline at 16 kHz."""

import asyncio

from pipecat.frames.frames import InterruptionFrame, OutputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection

from telephony.sip.media import FRAME_BYTES, RATE, CallAudio, SipTransport
from telephony.sip.peers import peer_allowed, split_host_port


def test_barge_in_drops_the_queued_bot_audio_at_once():
    async def scenario():
        audio = CallAudio(asyncio.get_running_loop())
        output = SipTransport(audio).output()
        audio.play(b"\x01\x00" * RATE)  # a second of the bot's reply waiting for the bridge clock
        assert audio.queued_secs() == 1.0
        await output.process_frame(InterruptionFrame(), FrameDirection.DOWNSTREAM)
        return audio

    audio = asyncio.run(scenario())
    assert audio.queued_secs() == 0.0
    assert audio.next_frame() == b"\0" * FRAME_BYTES  # the next 20 ms the caller hears is silence


def test_frames_are_whole_and_counted():
    loop = asyncio.new_event_loop()
    try:
        audio = CallAudio(loop)
        audio.play(b"\x02\x00" * 500)  # 1000 bytes: one whole frame and part of the next
        first, second = audio.next_frame(), audio.next_frame()
        assert len(first) == len(second) == FRAME_BYTES
        assert second.endswith(b"\0" * (2 * FRAME_BYTES - 1000))  # padded with silence
        assert audio.frames_out == 2 and audio.next_frame() == b"\0" * FRAME_BYTES and audio.frames_out == 2
        audio.received(b"\x03\x00" * 10)  # a short frame from PJSIP is padded to 20 ms
        loop.run_until_complete(asyncio.sleep(0))
        assert len(audio.inbound.get_nowait()) == FRAME_BYTES
    finally:
        loop.close()


def test_write_audio_frame_waits_for_the_clock():
    """The output transport blocks while more than the playout margin is queued (paced by PJSIP's clock)."""
    async def scenario():
        audio = CallAudio(asyncio.get_running_loop())
        output = SipTransport(audio).output()
        write = asyncio.create_task(output.write_audio_frame(
            OutputAudioRawFrame(audio=b"\0\0" * (RATE // 5), sample_rate=RATE, num_channels=1)))  # 200 ms
        await asyncio.sleep(0.05)
        assert not write.done()  # nobody drained it: still waiting
        while not write.done():  # the bridge clock takes 20 ms frames
            audio.next_frame()
            await asyncio.sleep(0.005)
        return await write, audio.queued_secs()

    ok, queued = asyncio.run(scenario())
    assert ok and queued <= 0.06


def test_peer_allow_list():
    assert peer_allowed("127.0.0.1", []) and peer_allowed("::1", [])
    assert not peer_allowed("10.0.0.5", [])
    assert peer_allowed("10.0.0.5", ["10.0.0.0/24"]) and not peer_allowed("10.0.1.5", ["10.0.0.0/24"])
    assert peer_allowed("[2001:db8::1]", ["2001:db8::/32"])
    assert not peer_allowed("not-an-ip", ["0.0.0.0/0"])
    assert split_host_port("10.0.0.5:5060") == ("10.0.0.5", 5060)
    assert split_host_port("[::1]:5070") == ("::1", 5070)


def test_request_uri_user_picks_the_number():
    from telephony.sip.agent import request_uri_user, uri_user

    invite = "INVITE sip:%2B4930123456@pbx.example.com;user=phone SIP/2.0\r\nVia: ...\r\n"
    assert request_uri_user(invite) == "+4930123456"
    assert request_uri_user("INVITE sip:200@10.0.0.3:5060 SIP/2.0\r\n") == "200"
    assert request_uri_user("INVITE sip:10.0.0.3 SIP/2.0\r\n") == ""  # no user: the To header's is used
    assert uri_user('"Front desk" <sip:+15550100300@127.0.0.1>;tag=x') == "+15550100300"
    assert uri_user("tel:+4930123456") == "+4930123456"
