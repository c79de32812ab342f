"""The Test call link opens the runner the web process was started with."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings

from voicebot import call_links
from voicebot.management.commands.demo import Command as Demo


def test_the_link_goes_to_the_call_page_url_when_set(settings):
    settings.RUNNER_PUBLIC_URL = "https://calls.example.com"
    settings.RUNNER_CALL_PAGE_URL = "http://127.0.0.1:8965/"
    link = call_links.call_page_url("salon", 7)
    assert link.startswith("http://127.0.0.1:8965/call/salon?token=")
    ticket = call_links.check(parse_qs(urlsplit(link).query)["token"][0], "salon")
    assert ticket.user_id == 7


def test_production_links_follow_the_public_runner_url(settings):
    settings.RUNNER_CALL_PAGE_URL = ""
    settings.RUNNER_PUBLIC_URL = "https://calls.example.com/"
    assert call_links.call_page_url("salon").startswith("https://calls.example.com/call/salon?token=")


def test_demo_passes_its_runner_port_to_the_web_process(monkeypatch):
    """``manage.py demo --runner-port 8965``: the web process it starts makes links to :8965, even with a
    public runner URL left in the environment for another runner (:8765)."""
    environ = {k: v for k, v in os.environ.items() if k != "VOICEBOT_RUNNER_CALL_PAGE_URL"}
    environ.update(VOICEBOT_RUNNER_PUBLIC_URL="http://127.0.0.1:8765", TWILIO_AUTH_TOKEN="test-token")
    monkeypatch.setattr(os, "environ", environ)
    Demo().security_env(8965)
    assert environ["VOICEBOT_RUNNER_CALL_PAGE_URL"] == "http://127.0.0.1:8965"
    web = subprocess.run(  # what the web child reads from the environment demo hands it
        [sys.executable, "-c", "import django; django.setup(); from voicebot import call_links; "
                               "print(call_links.call_page_url('elegant-receptionist', 1))"],
        env=environ, cwd=django_settings.BASE_DIR, capture_output=True, text=True, timeout=120)
    assert web.returncode == 0, web.stderr
    assert web.stdout.strip().startswith("http://127.0.0.1:8965/call/elegant-receptionist?token=")


def test_the_admin_button_gives_the_page_where_to_find_the_stored_call(client_a, bot_a, settings):
    settings.RUNNER_CALL_PAGE_URL = "http://127.0.0.1:8965"
    link = client_a.get(f"/admin/voicebot/bot/{bot_a.pk}/test-call/")["Location"]
    assert link.startswith("http://127.0.0.1:8965/call/alpha-desk?token=")
    ticket = call_links.check(parse_qs(urlsplit(link).query)["token"][0], bot_a.slug)
    assert ticket.calls_url == "http://testserver/admin/try-bot/stored-call/"


def test_the_stored_call_link_opens_the_call_for_its_company_s_staff_only(client_a, client, staff_b, bot_a):
    from voicebot.models import Call

    url = "/admin/try-bot/stored-call/"
    waiting = client_a.get(url, {"q": "webrtc-abc"})  # hung up, not stored yet: the page waits for it
    assert waiting.status_code == 404 and b'http-equiv="refresh"' in waiting.content
    call = Call.objects.create(company=bot_a.company, bot=bot_a, transport="webrtc", external_id="webrtc-abc")
    found = client_a.get(url, {"q": "webrtc-abc"})
    assert found.status_code == 302 and found["Location"] == f"/admin/voicebot/call/{call.pk}/change/"
    client.force_login(staff_b)  # another company's staff
    assert client.get(url, {"q": "webrtc-abc"}).status_code == 404
    assert client.get(url).status_code == 400


def test_the_calls_list_is_signed_and_only_a_web_address():
    token = call_links.sign("salon", 1, "javascript:alert(1)")
    assert call_links.check(token, "salon").calls_url == ""
    assert call_links.check(call_links.sign("salon", 1), "salon").calls_url == ""
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    with pytest.raises(call_links.BadCallToken):
        call_links.check(forged, "salon")


def test_the_call_page_shows_the_link_target_it_was_given():
    from telephony.providers.browser import page

    html = page("Salon <desk>", "/call/salon/offer?token=t", "https://admin.example.com/admin/voicebot/call/")
    assert 'const callsUrl = "https://admin.example.com/admin/voicebot/call/";' in html
    assert "<h1>Salon &lt;desk&gt;</h1>" in html and "__" not in html.replace("__init__", "")
