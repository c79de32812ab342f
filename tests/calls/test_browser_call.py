"""A browser call on the call page: headless Chromium, a fake microphone fed from a WAV, the real runner."""

import shutil
import time

import httpx
import pytest

from tests.calls.conftest import audio, wait_for_call
from tests.conftest import make_staff
from voicebot import call_links

pytestmark = [pytest.mark.models, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_call_page_refuses_without_a_valid_token(runner, desk_bot):
    base, _ = runner
    assert httpx.get(f"{base}/call/{desk_bot.slug}").status_code == 403
    other = call_links.sign("someone-else")
    assert "another bot" in httpx.get(f"{base}/call/{desk_bot.slug}", params={"token": other}).text
    assert httpx.post(f"{base}/call/{desk_bot.slug}/offer", json={"sdp": "x", "type": "offer"}).status_code == 403


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
