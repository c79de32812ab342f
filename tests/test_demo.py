"""`make demo` runs every process in the foreground and stops them all on SIGINT."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import httpx
import psutil
import pytest
from django.conf import settings

from tests.ports import free_port
from tests.waiting import wait_until
from voicebot import embedded_db


@pytest.fixture
def demo_env(tmp_path):
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "VOICEBOT_DATA_DIR": str(data_dir),
        "OLLAMA_BASE_URL": "http://127.0.0.1:9/v1",  # nothing answers: the bundled LLM starts
        "VOICEBOT_LLM_EMBEDDED_PORT": str(free_port()),
        "VOICEBOT_SIP_PORT": str(free_port()),  # the demo's SIP endpoint, off 5060 for the test
        "CELERY_TASK_DEFAULT_QUEUE": f"demo-test-{uuid.uuid4().hex[:6]}",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    env.pop("VOICEBOT_LLM_BASE_URL", None)
    yield env
    embedded_db.stop(data_dir / "postgres")


def try_a_campaign(http: httpx.Client) -> None:
    """Calling out as a new user tries it (README): a campaign of the demo bot with the example CSV,
    started, its three contacts called by the demo's fake Twilio callees; progress in admin."""
    def post(path, **kwargs):
        return http.post(path, headers={"X-CSRFToken": http.cookies["csrftoken"]}, **kwargs)

    bot = http.get("/api/v1/bots/elegant-receptionist/").json()
    always = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    created = post("/api/v1/campaigns/", json={"name": "Trial", "bot": bot["id"], "calling_hours": always,
                                                "max_concurrent_calls": 2})
    assert created.status_code == 201, created.text
    campaign = created.json()["id"]
    csv = (settings.BASE_DIR / "campaigns" / "examples" / "contacts.csv").read_bytes()
    upload = post(f"/api/v1/campaigns/{campaign}/contacts/", files={"file": ("contacts.csv", csv, "text/csv")})
    assert upload.status_code in (200, 201) and upload.json()["created"] == 3, upload.text
    assert post(f"/api/v1/campaigns/{campaign}/start/").status_code == 200

    def finished():
        progress = http.get(f"/api/v1/campaigns/{campaign}/").json()["progress"]
        return progress if progress["finished"] == 3 else None

    progress = wait_until(finished, 180, interval=1, what="the demo campaign's three contacts to be called")
    assert progress["contacts"]["done"] == 3, progress
    page = http.get(f"/admin/campaigns/campaign/{campaign}/change/").text
    assert "Export results (CSV)" in page and "3 / 3 (100%, 3 reached)" in page


def try_the_demo_bot(http: httpx.Client, receiver: str) -> None:
    """As a new user would: the salon's documents are ingested, the bot answers its opening hours and a
    price from them, and a booking reaches the demo receiver (the salon's booking system), signed."""
    def ready():
        documents = http.get("/api/v1/knowledge/").json()["results"]
        statuses = sorted(d["status"] for d in documents)
        return documents if statuses == ["ready"] * 3 else None

    wait_until(ready, 120, interval=1, what="the demo's three documents to be ingested")

    def chat(text, conversation=None):
        body = {"text": text} if conversation is None else {"text": text, "conversation": conversation}
        response = http.post("/api/v1/bots/elegant-receptionist/chat/", json=body,
                             headers={"X-CSRFToken": http.cookies["csrftoken"]})
        assert response.status_code == 200, response.text
        return response.json()

    hours = chat("What are your opening hours on Saturday?")
    assert "10" in hours["reply"] and "4" in hours["reply"], hours
    price = chat("How much is a gel manicure?")
    assert "35" in price["reply"], price
    conversation = chat("I'd like to book an appointment")["conversation"]
    for line in ("A manicure, please", "next Tuesday", "half past four",
                 "two one two, five five five, oh one two three"):
        chat(line, conversation)
    done = chat("yes, that's right", conversation)
    assert done["reply"] == "You're booked. See you soon!", done  # the receiver's answer, spoken
    bookings = httpx.get(receiver, timeout=5).json()["bookings"]
    assert bookings and bookings[-1]["service"] == "manicure" and bookings[-1]["phone"] == "+12125550123"
    stored = http.post("/api/v1/bots/elegant-receptionist/chat/", json={"conversation": conversation, "end": True},
                       headers={"X-CSRFToken": http.cookies["csrftoken"]}).json()
    assert stored["call"], stored

    def booking_on_the_dashboard():
        page = http.get("/admin/").text
        cell = re.search(r'data-figure="bookings_today">(\d+)<', page)
        return cell and int(cell.group(1)) >= 1

    # The worker writes the call's outcome (a booking); the dashboard counts it among today's.
    wait_until(booking_on_the_dashboard, 120, interval=1, what="the chat's booking on the dashboard")


def test_demo_serves_admin_with_demo_data_and_stops_everything_on_sigint(demo_env):
    web, runner, callees, receiver = free_port(), free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--web-port", str(web), "--runner-port", str(runner),
         "--callees-port", str(callees), "--receiver-port", str(receiver)],
        cwd=settings.BASE_DIR, env=demo_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = []
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Voicebot is running" in line:
                break
        text = "".join(output)
        assert "Voicebot is running" in text, text[-3000:]
        # Keep draining the output so the children never block on a full pipe.
        import threading

        threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True).start()

        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "runserver" in names and "worker" in names and "beat" in names and "llama-server" in names
        assert "fake_callees" in names  # no Twilio account here: calls out go to the local fake
        assert "demo_receiver" in names  # the salon's booking system and webhook receiver

        with httpx.Client(base_url=f"http://127.0.0.1:{web}", timeout=10) as http:
            login = http.get("/admin/login/")
            assert login.status_code == 200
            csrf = http.cookies["csrftoken"]
            response = http.post("/admin/login/?next=/admin/voicebot/bot/",
                                 data={"username": "demo", "password": "demo-voicebot", "csrfmiddlewaretoken": csrf,
                                       "next": "/admin/voicebot/bot/"}, follow_redirects=True)
            assert response.status_code == 200 and "Receptionist" in response.text
            health = http.get("/healthz").json()
            assert health["checks"]["database"]["ok"] and health["checks"]["redis"]["ok"]
            # The bot's Test call button opens this demo's runner with a fresh link for this user.
            bot_page = http.get("/admin/voicebot/bot/").text
            change = re.search(r'href="(/admin/voicebot/bot/\d+/change/)', bot_page).group(1)
            button = re.search(r'href="([^"]+/test-call/)"', http.get(change).text).group(1)
            link = http.get(button).headers["location"]
            assert link.startswith(f"http://127.0.0.1:{runner}/call/elegant-receptionist?token=")
            assert httpx.get(link, timeout=10).status_code == 200
            try_the_demo_bot(http, f"http://127.0.0.1:{receiver}/")
            try_a_campaign(http)
        # A simulated Twilio call, signed as Twilio signs, goes through the demo's runner and is stored.
        simulated = subprocess.run(
            [sys.executable, "manage.py", "simulate_call", "--bot", "elegant-receptionist",
             "--audio", "tests/data/caller_hours.wav", "--twilio", f"http://127.0.0.1:{runner}"],
            cwd=settings.BASE_DIR, env=demo_env, capture_output=True, text=True, timeout=120)
        assert simulated.returncode == 0, simulated.stderr[-2000:]
        report = json.loads(simulated.stdout.strip().splitlines()[-1])
        assert report["stored_call"] and [t["role"] for t in report["turns"]][:2] == ["bot", "caller"]
        assert "Simulated Twilio call (signed)" in "".join(output)
        sip_port = demo_env["VOICEBOT_SIP_PORT"]
        assert f"SIP: dial sip:+15550100300@127.0.0.1:{sip_port}" in "".join(output)
        runner_health = httpx.get(f"http://127.0.0.1:{runner}/healthz", timeout=5).json()
        assert runner_health["sip"]["ok"] and runner_health["sip"]["listening"].endswith(f":{sip_port}")
        llm = httpx.get(f"http://127.0.0.1:{demo_env['VOICEBOT_LLM_EMBEDDED_PORT']}/v1/models", timeout=5)
        assert llm.status_code == 200

        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        time.sleep(0.5)
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert "Stopped: llm, web" in "".join(output)
    finally:
        if proc.poll() is None:
            proc.kill()
        for child in psutil.Process().children(recursive=True):
            if child.pid != proc.pid and "manage.py" in " ".join(child.cmdline()):
                child.kill()
