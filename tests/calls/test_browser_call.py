"""A browser call on the call page: headless Chromium, a fake microphone fed from a WAV, the real runner;
and, where there is no Chromium, a WebRTC peer (aiortc) in its place."""

import asyncio
import shutil
import time

import httpx
import pytest

from tests.calls.conftest import audio, wait_for_call
from tests.conftest import make_staff
from voicebot import call_links

pytestmark = [pytest.mark.models, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_call_page_refuses_without_a_valid_token(runner, desk_bot):
    base, _ = runner
    assert httpx.get(f"{base}/call/{desk_bot.slug}").status_code == 403
    other = call_links.sign("someone-else")
    assert "another bot" in httpx.get(f"{base}/call/{desk_bot.slug}", params={"token": other}).text
    assert httpx.post(f"{base}/call/{desk_bot.slug}/offer", json={"sdp": "x", "type": "offer"}).status_code == 403


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install -y chromium)")
def test_browser_call_hears_the_greeting_and_is_stored(runner, desk_bot, queued):
    """The page shows the runner's states (listening, thinking, speaking) and the live transcript from the
    data channel, the microphone's level, and after hang-up a link to the stored call in admin."""
    from playwright.sync_api import sync_playwright

    base, hub = runner
    staff = make_staff("sam", desk_bot.company)
    calls_url = "http://127.0.0.1:8200/admin/voicebot/call/"
    url = f"{base}/call/{desk_bot.slug}?token={call_links.sign(desk_bot.slug, staff.pk, calls_url)}"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={audio('caller_hours_after_greeting.wav')}",
            "--autoplay-policy=no-user-gesture-required", "--no-sandbox"])
        page = chromium.new_page()
        page.goto(url)
        assert page.title() == f"Test call: {desk_bot.name}"
        page.click("#call")
        page.wait_for_function("window.callState.heardBot === true", timeout=60000)
        # The caller's question (the fake microphone, after the greeting) is heard, then answered.
        page.wait_for_function("window.callState.transcript.some(l => l.role === 'caller') && "
                               "window.callState.states.lastIndexOf('speaking') > "
                               "window.callState.states.indexOf('thinking')", timeout=90000)
        status = page.text_content("#status")
        state = page.evaluate("window.callState")
        lines = page.locator("#transcript .line").all_text_contents()
        page.click("#hangup")
        link = page.locator("#stored-call")
        link.wait_for(timeout=5000)
        href = link.get_attribute("href")
        time.sleep(1)
        chromium.close()
    assert state["connected"] and state["peakLevel"] > 0.05 and state["micPeak"] > 0.01
    assert {"listening", "thinking", "speaking"} <= set(state["states"]) and status
    bot_lines = [t["text"] for t in state["transcript"] if t["role"] == "bot"]
    assert bot_lines[0].startswith("Hello, Alpha Dental") and len(bot_lines) >= 2  # greeting, then the answer
    assert any(t["role"] == "caller" and t["text"] for t in state["transcript"])
    assert any("Hello, Alpha Dental" in line for line in lines)
    assert href == f"{calls_url}?q={state['callId']}" and state["callId"].startswith("webrtc-")
    calls = [c for c in hub.finished if c.info.transport == "webrtc"]
    deadline = time.monotonic() + 45  # WebRTC notices the closed peer after a while
    while not calls and time.monotonic() < deadline:
        time.sleep(0.2)
        calls = [c for c in hub.finished if c.info.transport == "webrtc"]
    assert calls, "the browser call never ended"
    call = wait_for_call(calls[-1].info.external_id)
    assert call.transport == "webrtc" and call.bot_id == desk_bot.pk and call.external_id == state["callId"]
    assert call.turns.filter(role="bot").first().text == "Hello, Alpha Dental, how can I help?"


def test_a_webrtc_peer_hears_the_greeting_once_connected(runner, desk_bot, queued):
    """The greeting waits for the peer's connection (the browser adapter's connected event), then is heard."""
    import numpy as np
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import AudioStreamTrack

    base, hub = runner
    staff = make_staff("sam", desk_bot.company)

    async def peer():
        pc = RTCPeerConnection()
        pc.addTrack(AudioStreamTrack())  # a silent microphone
        heard = asyncio.Event()

        @pc.on("track")
        def on_track(track):
            async def listen():
                while not heard.is_set():
                    if np.abs((await track.recv()).to_ndarray()).max() > 500:
                        heard.set()

            asyncio.ensure_future(listen())

        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{base}/call/{desk_bot.slug}/offer",
                                       params={"token": call_links.sign(desk_bot.slug, staff.pk)},
                                       json={"sdp": pc.localDescription.sdp, "type": "offer"})
        assert answer.status_code == 200, answer.text
        answered = answer.json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answered["sdp"], type=answered["type"]))
        await asyncio.wait_for(heard.wait(), 30)
        await pc.close()

    earlier = {id(c) for c in hub.finished}  # other tests' browser calls (the Chromium one) are not this one
    asyncio.run(peer())
    deadline = time.monotonic() + 45  # WebRTC notices the closed peer after a while
    while not (calls := [c for c in hub.finished if c.info.transport == "webrtc" and id(c) not in earlier]) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert calls, "the browser call never ended"
    call = wait_for_call(calls[-1].info.external_id)
    assert call.turns.filter(role="bot").first().text == "Hello, Alpha Dental, how can I help?"
