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
    from playwright.sync_api import sync_playwright

    base, hub = runner
    staff = make_staff("sam", desk_bot.company)
    url = f"{base}/call/{desk_bot.slug}?token={call_links.sign(desk_bot.slug, staff.pk)}"
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
        state = page.evaluate("window.callState")
        page.click("#hangup")
        time.sleep(1)
        chromium.close()
    assert state["connected"] and state["peakLevel"] > 0.05
    calls = [c for c in hub.finished if c.info.transport == "webrtc"]
    deadline = time.monotonic() + 45  # WebRTC notices the closed peer after a while
    while not calls and time.monotonic() < deadline:
        time.sleep(0.2)
        calls = [c for c in hub.finished if c.info.transport == "webrtc"]
    assert calls, "the browser call never ended"
    call = wait_for_call(calls[-1].info.external_id)
    assert call.transport == "webrtc" and call.bot_id == desk_bot.pk
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
