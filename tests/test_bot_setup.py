"""Bot set-up that checks itself: models validated on save, warnings on the bot page, its parts listed,
and report schedules with a weekday dropdown, "send now" and a preview."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.urls import reverse

from knowledge.models import KnowledgeDocument
from postcall.models import LeadScoringRules, Report, ReportSchedule
from tests.api.conftest import key_client
from tests.test_admin_scoping import bot_form
from voicebot import llm_endpoint, model_choices
from voicebot.models import Bot, BotTool

# --- Little local servers: an OpenAI-compatible model list and a call runner's /healthz -------------


class _Server:
    def __init__(self, routes: dict[str, tuple[int, dict]]):
        self.routes = routes
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server.hits.append(self.path)
                status, body = server.routes.get(self.path, (404, {"error": "not found"}))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def point_llm_at(monkeypatch, url: str) -> None:
    monkeypatch.setenv("VOICEBOT_LLM_BASE_URL", url)
    llm_endpoint.base_url.cache_clear()
    model_choices._llm_cache.clear()


@pytest.fixture
def llm_list(monkeypatch):
    """A fake OpenAI-compatible endpoint (Ollama's /v1/models shape) serving two models."""
    server = _Server({"/v1/models": (200, {"object": "list", "data": [
        {"id": "llama3.1:8b", "object": "model"}, {"id": "qwen2.5:latest", "object": "model"}]})})
    point_llm_at(monkeypatch, f"http://127.0.0.1:{server.port}/v1")
    yield server
    server.close()
    monkeypatch.undo()
    llm_endpoint.base_url.cache_clear()
    model_choices._llm_cache.clear()


@pytest.fixture
def llm_down(monkeypatch):
    point_llm_at(monkeypatch, f"http://127.0.0.1:{free_port()}/v1")
    yield
    monkeypatch.undo()
    llm_endpoint.base_url.cache_clear()
    model_choices._llm_cache.clear()


@pytest.fixture
def runner_up(settings):
    server = _Server({"/healthz": (200, {"ok": True, "active_calls": 0})})
    settings.RUNNER_HOST, settings.RUNNER_PORT, settings.RUNNER_CALL_PAGE_URL = "127.0.0.1", server.port, ""
    yield server
    server.close()


@pytest.fixture
def voices_dir(settings, tmp_path):
    """TTS_VOICES_DIR with one installed voice (its .onnx and .onnx.json) and one without its .json."""
    folder = tmp_path / "voices"
    folder.mkdir()
    (folder / "de_DE-thorsten-medium.onnx").write_bytes(b"onnx")
    (folder / "de_DE-thorsten-medium.onnx.json").write_text("{}")
    (folder / "fr_FR-half-low.onnx").write_bytes(b"onnx")
    settings.TTS_VOICES_DIR = folder
    return folder


def save_bot(client, company, **overrides):
    return client.post(reverse("admin:voicebot_bot_add"), bot_form(company, **overrides), follow=True)


def form_errors(response) -> dict:
    adminform = response.context.get("adminform") if response.context else None
    return dict(adminform.form.errors) if adminform else {}


def page_of(client, bot) -> tuple[str, list[str]]:
    response = client.get(reverse("admin:voicebot_bot_change", args=[bot.pk]))
    assert response.status_code == 200
    return response.content.decode(), list(response.context["setup_warnings"])


# --- Voice, speech recognition and language model: checked on save -----------------------------------


def test_unknown_voice_is_refused_naming_the_installed_ones(client_a, company_a, voices_dir, llm_list):
    response = save_bot(client_a, company_a, voice="en_US-nobody-low")
    errors = form_errors(response)
    assert "voice" in errors, errors
    message = errors["voice"][0]
    assert "en_US-nobody-low" in message and "de_DE-thorsten-medium" in message and "en_US-joe-medium" in message
    assert "fr_FR-half-low" not in message  # no .onnx.json: not a usable voice
    assert not Bot.objects.filter(slug="front-desk").exists()
    # The voice box suggests what is installed.
    assert '<option value="de_DE-thorsten-medium">' in response.content.decode()


@pytest.mark.parametrize("voice", ["de_DE-thorsten-medium", "en_US-joe-medium", ""])
def test_installed_voice_saves(client_a, company_a, voices_dir, llm_list, voice):
    response = save_bot(client_a, company_a, voice=voice)
    assert not form_errors(response)
    assert Bot.objects.get(slug="front-desk").voice == voice


def test_voice_path_must_exist_with_its_json(client_a, company_a, voices_dir, llm_list):
    errors = form_errors(save_bot(client_a, company_a, voice=str(voices_dir / "fr_FR-half-low.onnx")))
    assert "voice" in errors and ".onnx.json" in errors["voice"][0]
    response = save_bot(client_a, company_a, voice=str(voices_dir / "de_DE-thorsten-medium.onnx"))
    assert not form_errors(response)


def test_unknown_speech_model_is_refused_naming_known_ones(client_a, company_a, llm_list):
    errors = form_errors(save_bot(client_a, company_a, stt_model="huge-v9"))
    assert "stt_model" in errors, errors
    assert "huge-v9" in errors["stt_model"][0] and "large-v3" in errors["stt_model"][0]
    assert not Bot.objects.filter(slug="front-desk").exists()


def test_speech_model_by_name_or_existing_folder_saves(client_a, company_a, llm_list, tmp_path):
    missing = tmp_path / "whisper-nl"
    errors = form_errors(save_bot(client_a, company_a, stt_model=str(missing)))
    assert "stt_model" in errors and "model.bin" in errors["stt_model"][0]
    missing.mkdir()
    (missing / "model.bin").write_bytes(b"ct2")
    assert not form_errors(save_bot(client_a, company_a, stt_model=str(missing)))
    assert Bot.objects.get(slug="front-desk").stt_model == str(missing)
    bot = Bot.objects.get(slug="front-desk")
    response = client_a.post(reverse("admin:voicebot_bot_change", args=[bot.pk]),
                             bot_form(company_a, stt_model="tiny.en"), follow=True)
    assert not form_errors(response)
    bot.refresh_from_db()
    assert bot.stt_model == "tiny.en"


def test_known_speech_model_not_on_disk_saves_with_a_warning(client_a, company_a, llm_list):
    response = save_bot(client_a, company_a, stt_model="large-v3")
    assert not form_errors(response)
    assert Bot.objects.get(slug="front-desk").stt_model == "large-v3"
    notes = [str(m) for m in response.context["messages"]]
    assert any("'large-v3' is not on this machine yet" in note for note in notes), notes


def test_language_model_must_be_one_the_server_serves(client_a, company_a, llm_list):
    response = save_bot(client_a, company_a, llm_model="gpt-17")
    errors = form_errors(response)
    assert "llm_model" in errors, errors
    assert "gpt-17" in errors["llm_model"][0] and "llama3.1:8b" in errors["llm_model"][0]
    assert "/v1/models" in llm_list.hits
    assert '<option value="llama3.1:8b">' in response.content.decode()
    assert not Bot.objects.filter(slug="front-desk").exists()
    for name in ("llama3.1:8b", "qwen2.5"):  # Ollama's "name" means "name:latest"
        Bot.objects.filter(slug="front-desk").delete()
        assert not form_errors(save_bot(client_a, company_a, llm_model=name)), name
        assert Bot.objects.get(slug="front-desk").llm_model == name


def test_bundled_llm_server_list_is_used(client_a, company_a, llm_server):
    model_choices._llm_cache.clear()
    errors = form_errors(save_bot(client_a, company_a, llm_model="llama3.1:8b"))
    assert "smollm2-135m-instruct" in errors["llm_model"][0]
    assert not form_errors(save_bot(client_a, company_a, llm_model="smollm2-135m-instruct"))


def test_language_model_is_accepted_with_a_warning_when_the_server_is_down(client_a, company_a, llm_down):
    response = save_bot(client_a, company_a, llm_model="llama3.1:8b")
    assert not form_errors(response)
    assert Bot.objects.get(slug="front-desk").llm_model == "llama3.1:8b"
    notes = [str(m) for m in response.context["messages"]]
    assert any("saved unchecked" in note and "did not answer" in note for note in notes), notes


def test_api_refuses_an_unknown_voice_and_speech_model(bot_a, voices_dir):
    api = key_client(bot_a.company)
    url = f"/api/v1/bots/{bot_a.slug}/"
    response = api.patch(url, {"voice": "en_US-nobody-low", "stt_model": "huge-v9"}, format="json")
    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    assert "de_DE-thorsten-medium" in str(fields["voice"]) and "large-v3" in str(fields["stt_model"])
    assert api.patch(url, {"voice": "de_DE-thorsten-medium"}, format="json").status_code == 200
    bot_a.refresh_from_db()
    assert bot_a.voice == "de_DE-thorsten-medium"


def test_plain_labels(client_a, bot_a, llm_list, runner_up):
    body, _ = page_of(client_a, bot_a)
    for label in ("Speech recognition model", "Language model", "Passages per answer", "Minimum passage match",
                  "Answer from documents"):
        assert label in body, label
    for engineer_label in ("Stt model", "Llm model", "Knowledge top k"):
        assert engineer_label not in body
    assert 'placeholder="the install&#x27;s default: en_US-joe-medium"' in body


# --- Warnings on the bot page ------------------------------------------------------------------------


def test_knowledge_on_without_a_ready_document_warns_until_one_is_ready(client_a, bot_a, llm_list, runner_up):
    bot_a.use_knowledge = True
    bot_a.save()
    body, warnings = page_of(client_a, bot_a)
    assert any("no document is linked" in w for w in warnings), warnings
    assert "bot-setup-warnings" in body and "no document is linked" in body
    document = KnowledgeDocument.objects.create(company=bot_a.company, name="prices.pdf", content_hash="h1",
                                                status=KnowledgeDocument.Status.FAILED, error="no text layer")
    document.bots.add(bot_a)
    _, warnings = page_of(client_a, bot_a)
    assert any("prices.pdf: failed" in w for w in warnings), warnings
    document.status, document.error = KnowledgeDocument.Status.READY, ""
    document.save()
    body, warnings = page_of(client_a, bot_a)
    assert warnings == [] and "Set-up checked" in body


def test_another_companys_ready_document_does_not_count(client_a, bot_a, company_b, llm_list, runner_up):
    bot_a.use_knowledge = True
    bot_a.save()
    stray = KnowledgeDocument.objects.create(company=company_b, name="beta-secret.pdf", content_hash="h2",
                                             status=KnowledgeDocument.Status.READY)
    # A mislinked row (the m2m signal refuses these; written past it): never shown, never counted.
    KnowledgeDocument.bots.through.objects.create(knowledgedocument=stray, bot=bot_a)
    body, warnings = page_of(client_a, bot_a)
    assert any("no document is linked" in w for w in warnings)
    assert "beta-secret.pdf" not in body


def test_on_complete_naming_a_missing_tool_warns_until_it_exists(client_a, bot_a, llm_list, runner_up):
    bot_a.scenarios = [{"name": "booking", "trigger_keywords": ["book"],
                        "collect_fields": [{"name": "phone", "prompt": "Your number?", "type": "phone"}],
                        "on_complete": "booking_created"}]
    bot_a.full_clean()
    bot_a.save()
    _, warnings = page_of(client_a, bot_a)
    assert any("on_complete: booking_created" in w and "no tool named booking_created" in w for w in warnings)
    tool = BotTool.objects.create(bot=bot_a, name="booking_created", description="Books.",
                                  url="https://calendar.example/book", active=False)
    _, warnings = page_of(client_a, bot_a)
    assert any("is inactive" in w for w in warnings), warnings
    tool.active = True
    tool.save()
    _, warnings = page_of(client_a, bot_a)
    assert warnings == []


def test_runner_down_warns_and_stops_when_it_answers(client_a, bot_a, llm_list, settings):
    # A runner listening on every address is asked on loopback.
    settings.RUNNER_HOST, settings.RUNNER_PORT, settings.RUNNER_CALL_PAGE_URL = "0.0.0.0", free_port(), ""
    _, warnings = page_of(client_a, bot_a)
    assert any("call runner is not reachable" in w and str(settings.RUNNER_PORT) in w for w in warnings), warnings
    server = _Server({"/healthz": (503, {"ok": False})})
    try:
        settings.RUNNER_PORT = server.port
        _, warnings = page_of(client_a, bot_a)
        assert any("is starting" in w for w in warnings), warnings
        server.routes["/healthz"] = (200, {"ok": True})
        _, warnings = page_of(client_a, bot_a)
        assert warnings == [] and "/healthz" in server.hits
    finally:
        server.close()


def test_runner_checked_is_the_one_test_call_opens(client_a, bot_a, llm_list, runner_up, settings):
    # `demo --runner-port N` points the Test call at its runner: that one is checked, not RUNNER_PORT's.
    settings.RUNNER_CALL_PAGE_URL = f"http://127.0.0.1:{free_port()}"
    _, warnings = page_of(client_a, bot_a)
    assert any(f"not reachable at {settings.RUNNER_CALL_PAGE_URL}/healthz" in w for w in warnings), warnings
    settings.RUNNER_CALL_PAGE_URL = f"http://127.0.0.1:{runner_up.port}/"
    settings.RUNNER_PORT = free_port()
    _, warnings = page_of(client_a, bot_a)
    assert warnings == []


def test_runner_down_does_not_hold_the_page(client_a, bot_a, llm_list, settings):
    import time

    # A listening socket that never answers: the check gives up after its short timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(0)
    try:
        settings.RUNNER_HOST, settings.RUNNER_PORT = "127.0.0.1", silent.getsockname()[1]
        settings.RUNNER_CALL_PAGE_URL = ""
        started = time.monotonic()
        _, warnings = page_of(client_a, bot_a)
        assert time.monotonic() - started < 2.0
        assert any("not reachable" in w for w in warnings), warnings
    finally:
        silent.close()


def test_llm_model_gone_from_the_server_warns(client_a, bot_a, llm_list, runner_up):
    Bot.objects.filter(pk=bot_a.pk).update(llm_model="mistral:7b")  # saved before the server dropped it
    _, warnings = page_of(client_a, bot_a)
    assert any("'mistral:7b' is not served" in w for w in warnings), warnings


# --- What the bot page lists ---------------------------------------------------------------------------


def test_bot_page_lists_documents_tools_numbers_and_default_scoring(client_a, bot_a, number_a, llm_list, runner_up):
    failed = KnowledgeDocument.objects.create(company=bot_a.company, name="hours.docx", content_hash="h3",
                                              status=KnowledgeDocument.Status.FAILED, error="The file is empty.")
    failed.bots.add(bot_a)
    BotTool.objects.create(bot=bot_a, name="create_booking", description="Books.", url="https://cal.example/b")
    body, _ = page_of(client_a, bot_a)
    assert "hours.docx" in body and "Failed" in body and "The file is empty." in body
    assert reverse("admin:knowledge_knowledgedocument_change", args=[failed.pk]) in body
    assert "create_booking" in body
    assert "+4930123456" in body
    assert "no rules of its own: the defaults below apply" in body
    assert "Hot from 40 points, warm from 20" in body and "asked_price" in body and "how much" in body
    assert f"{reverse('admin:postcall_leadscoringrules_add')}?bot={bot_a.pk}" in body
    assert "Try this scenario in chat" in body and reverse("try_bot", args=[bot_a.pk]) in body
    assert "django_ace/ace/ace.js" in body and "django-ace-widget" in body  # the scenario editor


def test_bot_page_shows_its_own_scoring_rules(client_a, bot_a, llm_list, runner_up):
    rules = LeadScoringRules.objects.create(bot=bot_a, rules=[{"signal": "asked_insurance", "points": 25,
                                                               "keywords": ["insurance"]}],
                                            hot_threshold=60, warm_threshold=30)
    body, _ = page_of(client_a, bot_a)
    assert "This bot's own rules" in body and "Hot from 60 points, warm from 30" in body
    assert "asked_insurance" in body and "asked_price" not in body
    assert reverse("admin:postcall_leadscoringrules_change", args=[rules.pk]) in body


def test_scenario_editor_is_served_locally(client_a, bot_a, llm_list, runner_up):
    from django.contrib.staticfiles import finders

    for asset in ("django_ace/ace/ace.js", "django_ace/ace/mode-yaml.js", "django_ace/widget.js"):
        assert finders.find(asset), asset
    body, _ = page_of(client_a, bot_a)
    assert "cdn" not in body.lower()


def test_staff_of_b_cannot_see_a_bots_page(client, staff_b, bot_a, llm_list, runner_up):
    client.force_login(staff_b)
    response = client.get(reverse("admin:voicebot_bot_change", args=[bot_a.pk]), follow=True)
    body = response.content.decode()
    assert "doesn’t exist" in body or response.status_code == 404
    assert "Alpha front desk" not in body and "setup_warnings" not in (response.context or {})


# --- Report schedules ----------------------------------------------------------------------------------


@pytest.fixture
def schedule_a(company_a):
    company_a.report_recipients = ["owner@alpha.example"]
    company_a.save()
    return ReportSchedule.objects.create(company=company_a, period="week", weekday=0, hour=7)


@pytest.fixture
def schedule_b(company_b):
    company_b.report_recipients = ["owner@beta.example"]
    company_b.save()
    return ReportSchedule.objects.create(company=company_b, period="day", hour=7)


def test_schedule_weekday_is_a_dropdown_from_sunday(client_a, schedule_a, company_a):
    url = reverse("admin:postcall_reportschedule_change", args=[schedule_a.pk])
    body = client_a.get(url).content.decode()
    assert '<option value="0" selected>Sunday</option>' in body and '<option value="6">Saturday</option>' in body
    response = client_a.post(url, {"company": company_a.pk, "period": "week", "hour": 18, "weekday": 5,
                                   "active": "on"})
    assert response.status_code == 302
    schedule_a.refresh_from_db()
    assert (schedule_a.weekday, schedule_a.hour) == (5, 18)
    listing = client_a.get(reverse("admin:postcall_reportschedule_changelist")).content.decode()
    assert "Friday" in listing and "18:00" in listing


def test_send_now_emails_the_report_once_and_is_scoped(client_a, schedule_a, schedule_b):
    url = reverse("admin:postcall_reportschedule_changelist")
    response = client_a.post(url, {"action": "send_now", "_selected_action": [schedule_a.pk, schedule_b.pk]},
                             follow=True)
    notes = [str(m) for m in response.context["messages"]]
    assert any("e-mailed to owner@alpha.example" in n for n in notes), notes
    assert [m.to for m in mail.outbox] == [["owner@alpha.example"]]  # B's schedule was not touched
    assert Report.objects.filter(company=schedule_a.company).count() == 1
    assert not Report.objects.filter(company=schedule_b.company).exists()
    again = client_a.post(url, {"action": "send_now", "_selected_action": [schedule_a.pk]}, follow=True)
    assert any("already e-mailed" in str(m) for m in again.context["messages"])
    assert len(mail.outbox) == 1


def test_preview_renders_without_storing_or_sending(client_a, schedule_a, bot_a):
    from django.utils import timezone

    from voicebot.models import Call

    Call.objects.create(company=bot_a.company, bot=bot_a, transport="webrtc", external_id="now-1",
                        started_at=timezone.now(), ended_at=timezone.now())
    url = reverse("admin:postcall_reportschedule_preview", args=[schedule_a.pk])
    last = client_a.get(url)
    assert last.status_code == 200
    body = last.content.decode()
    assert "Weekly call report for Alpha Dental" in body and "nothing is stored or sent" in body
    assert "<strong>0</strong> calls" in body  # last complete week: none
    current = client_a.get(url + "?current=1").content.decode()
    assert "<strong>1</strong> calls" in current and "so far" in current
    assert not Report.objects.exists() and mail.outbox == []
    assert 'name="action" value="send_now"' in body  # the preview page sends through the scoped action
    change = client_a.get(reverse("admin:postcall_reportschedule_change", args=[schedule_a.pk])).content.decode()
    assert url in change


def test_preview_of_another_companys_schedule_is_not_found(client_a, schedule_b):
    response = client_a.get(reverse("admin:postcall_reportschedule_preview", args=[schedule_b.pk]))
    assert response.status_code == 404
    assert "Beta" not in response.content.decode()


# --- In a browser: the scenario editor has line numbers and what is typed there is saved ----------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install -y chromium)")
def test_scenario_editor_in_chromium(live_server, client, staff_a, bot_a, llm_list, runner_up):
    from playwright.sync_api import sync_playwright

    client.force_login(staff_a)
    session = client.cookies["sessionid"].value
    url = live_server.url + reverse("admin:voicebot_bot_change", args=[bot_a.pk])
    requests = []
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = chromium.new_context(viewport={"width": 1366, "height": 900})
        context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        page = context.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.goto(url)
        page.wait_for_selector(".ace_editor .ace_gutter")
        assert "Check before the next call" not in page.content()  # nothing to warn about here
        editor = page.locator(".ace_editor .ace_text-input")
        editor.focus()
        page.keyboard.insert_text("- name: booking\n  trigger_keywords: [book]\n  collect_fields:\n"
                                  "    - {name: phone, prompt: 'Your number?', type: phone}\n"
                                  "  on_complete: booking_created\n")
        gutter = page.locator(".ace_gutter-cell").all_inner_texts()
        assert gutter[:5] == ["1", "2", "3", "4", "5"], gutter
        page.click("input[name=_continue]")
        page.wait_for_selector("#bot-setup-warnings")
        assert "no tool named booking_created" in page.inner_text("#bot-setup-warnings")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        chromium.close()
    bot_a.refresh_from_db()
    assert bot_a.scenarios[0]["on_complete"] == "booking_created"
    local = (live_server.url, f"blob:{live_server.url}")  # Ace's blobs are made in the page
    assert [r for r in requests if not r.startswith(local)] == []
