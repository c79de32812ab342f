"""Run the whole platform in the foreground on embedded defaults (``make demo``).

Starts every process of DESIGN.md's table that this install has: the web
(admin, API) on 127.0.0.1:8000, the call runner on :8765 (once the
``runbots`` command exists), a Celery worker and beat, and the bundled
llama.cpp server when no Ollama answers. Seeds the demo data, prints the
admin URL and login, and on Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

from voicebot import llm_endpoint
from voicebot.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERNAME


@dataclass
class Proc:
    name: str
    argv: list[str]
    ready_url: str | None = None
    popen: subprocess.Popen | None = None


DEFAULT_RECEIVER_PORT = 8791


class Command(BaseCommand):
    help = "Run web, call runner, Celery worker and beat (and the local LLM) until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--web-port", type=int, default=8000)
        parser.add_argument("--runner-port", type=int, default=settings.RUNNER_PORT)
        parser.add_argument("--callees-port", type=int, default=8790,
                            help="Where the fake Twilio (manage.py fake_callees) listens when no Twilio account is set.")
        parser.add_argument("--receiver-port", type=int, default=DEFAULT_RECEIVER_PORT,
                            help="Where the demo receiver (the demo client's booking system and webhooks) listens.")
        parser.add_argument("--no-seed", action="store_true", help="Do not create the demo company and login.")
        parser.add_argument("--verbose", action="store_true",
                            help="Every library's log lines too (Pipecat's debug, each request and task).")

    def handle(self, *args, web_port, runner_port, no_seed, callees_port=8790,
               receiver_port=DEFAULT_RECEIVER_PORT, verbose=False, **options):
        if verbose:
            os.environ["VOICEBOT_VERBOSE"] = "1"
        receiver = f"http://127.0.0.1:{receiver_port}"
        # The demo receiver is on loopback: allowed to the guarded client by its origin alone.
        os.environ["VOICEBOT_OUTBOUND_ALLOWED_ORIGINS"] = ",".join(
            filter(None, [os.environ.get("VOICEBOT_OUTBOUND_ALLOWED_ORIGINS", ""), receiver]))
        settings.OUTBOUND_ALLOWED_ORIGINS = os.environ["VOICEBOT_OUTBOUND_ALLOWED_ORIGINS"].split(",")
        call_command("migrate", interactive=False, verbosity=0)
        if not no_seed:
            call_command("seed_demo", documents=True, receiver=receiver)
        notes = self.security_env(runner_port)
        callees = self.fake_twilio_env(callees_port, notes)
        procs = self.plan(web_port, runner_port, callees=callees, receiver_port=receiver_port, verbose=verbose)
        self.stopping = False
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        try:
            for proc in procs:
                self.start(proc)
            self.wait_ready(procs)
            self.stdout.write(self.style.SUCCESS(
                f"\nVoicebot is running.\n  Admin:  http://127.0.0.1:{web_port}/admin/\n"
                f"  Login:  {DEMO_USERNAME} / {DEMO_PASSWORD}   (superuser: manage.py createsuperuser)\n"
                f"  API:    http://127.0.0.1:{web_port}/api/docs/   (a key: manage.py api_key --agency)\n"
                f"  Health: http://127.0.0.1:{web_port}/healthz\n  Stop:   Ctrl-C\n"
            ))
            for note in notes:
                self.stdout.write(note)
            self.supervise(procs)
        finally:
            self.stop_all(procs)

    def security_env(self, runner_port: int) -> list[str]:
        """Environment for the children so calls work out of the box with every check on (README, "Security")."""
        from pipelines.management.commands.simulate_call import DEMO_TWILIO_TOKEN
        from voicebot import local_secret

        notes = []
        os.environ.setdefault("VOICEBOT_RUNNER_PUBLIC_URL", f"http://127.0.0.1:{runner_port}")
        # A bot's Test call opens the runner started here, even where VOICEBOT_RUNNER_PUBLIC_URL names another.
        os.environ.setdefault("VOICEBOT_RUNNER_CALL_PAGE_URL", f"http://127.0.0.1:{runner_port}")
        if not settings.TELEPHONY_VERIFY_SIGNATURES:
            notes.append(self.style.WARNING(
                "  WARNING: provider signatures are NOT verified (VOICEBOT_VERIFY_PROVIDER_SIGNATURES=false): "
                "anyone who reaches the runner can place calls. Local development only."))
        if not os.environ.get("TWILIO_AUTH_TOKEN"):
            os.environ["TWILIO_AUTH_TOKEN"] = local_secret.secret(settings.DATA_DIR, DEMO_TWILIO_TOKEN)
            notes.append("  Twilio: webhooks are verified with a local demo auth token; set TWILIO_AUTH_TOKEN to "
                         "your account's to take real Twilio calls.")
        if settings.SIP_ENABLED:
            from voicebot.management.commands.seed_demo import DEMO_SIP_NUMBER

            port = "" if settings.SIP_PORT == 5060 else f":{settings.SIP_PORT}"
            notes.append(f"  SIP: dial sip:{DEMO_SIP_NUMBER}@127.0.0.1{port} from a softphone on this machine, e.g. "
                         f"baresip -e '/dial sip:{DEMO_SIP_NUMBER}@127.0.0.1{port}' (other hosts: "
                         f"VOICEBOT_SIP_ALLOWED_PEERS).")
        notes.append(f"  Simulated Twilio call (signed): .venv/bin/python manage.py simulate_call "
                     f"--bot elegant-receptionist --audio tests/data/caller_hours.wav "
                     f"--twilio {os.environ['VOICEBOT_RUNNER_PUBLIC_URL']}")
        return notes

    def fake_twilio_env(self, port: int, notes: list[str]) -> int | None:
        """Without a Twilio account, outbound calls go to a local fake of Twilio whose callees answer and
        talk (``manage.py fake_callees``); returns its port (None: real Twilio)."""
        if os.environ.get("TWILIO_ACCOUNT_SID"):
            return None
        os.environ["TWILIO_ACCOUNT_SID"] = "ACdemo00000000000000000000000000"
        os.environ["TWILIO_API_BASE_URL"] = f"http://127.0.0.1:{port}"
        notes.append(f"  Calling out: no TWILIO_ACCOUNT_SID, so calls the bots place go to a local fake of Twilio "
                     f"(manage.py fake_callees on :{port}) whose callees answer, say hello and agree. Try it: "
                     f"Bots -> Receptionist -> Call a number, or Campaigns -> Add with campaigns/examples/contacts.csv.")
        return port

    def plan(self, web_port: int, runner_port: int, *, callees: int | None = None,
             receiver_port: int | None = None, verbose: bool = False) -> list[Proc]:
        python, manage = sys.executable, str(settings.BASE_DIR / "manage.py")
        procs = []
        env_url = os.environ.get("VOICEBOT_LLM_BASE_URL")
        if not env_url and not llm_endpoint.ollama_answers():
            try:
                argv = llm_endpoint.embedded_server_command()
            except Exception as exc:  # the platform runs without an LLM; calls use the fallback phrase
                self.stderr.write(f"No Ollama at {settings.OLLAMA_BASE_URL} and no local LLM server: {exc}")
            else:
                procs.append(Proc("llm", argv, ready_url=llm_endpoint.embedded_base_url() + "/models"))
                os.environ["VOICEBOT_LLM_BASE_URL"] = llm_endpoint.embedded_base_url()
        procs.append(Proc("web", [python, manage, "runserver", f"127.0.0.1:{web_port}", "--noreload"],
                          ready_url=f"http://127.0.0.1:{web_port}/healthz"))
        if "runbots" in get_commands():
            procs.append(Proc("runner", [python, manage, "runbots", "--port", str(runner_port)],
                              ready_url=f"http://127.0.0.1:{runner_port}/healthz"))
        if callees is not None:
            procs.append(Proc("callees", [python, manage, "fake_callees", "--port", str(callees)],
                              ready_url=f"http://127.0.0.1:{callees}/"))
        if receiver_port is not None:
            procs.append(Proc("receiver", [python, manage, "demo_receiver", "--port", str(receiver_port)],
                              ready_url=f"http://127.0.0.1:{receiver_port}/"))
        celery = [python, "-m", "celery", "-A", "voicebot"]
        procs.append(Proc("worker", celery + ["worker", "-l", "info", "--concurrency", "2"]))
        # Beat says "sending due task" every 10 s (the campaign ticker): only warnings, unless --verbose.
        procs.append(Proc("beat", celery + ["beat", "-l", "info" if verbose else "warning",
                                            "-s", str(settings.DATA_DIR / "celerybeat-schedule")]))
        return procs

    def start(self, proc: Proc) -> None:
        proc.popen = subprocess.Popen(
            proc.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True, cwd=settings.BASE_DIR,
        )
        threading.Thread(target=self.relay, args=(proc,), daemon=True).start()

    def relay(self, proc: Proc) -> None:
        for line in proc.popen.stdout:
            self.stdout.write(f"[{proc.name:<6}] {line.rstrip()}")

    def wait_ready(self, procs: list[Proc], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        for proc in procs:
            while proc.ready_url and not self.stopping:
                if proc.popen.poll() is not None:
                    raise SystemExit(f"{proc.name} exited with code {proc.popen.returncode} while starting")
                try:
                    # Any HTTP answer means it listens (health may say 'degraded').
                    httpx.get(proc.ready_url, timeout=2)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{proc.name} did not answer at {proc.ready_url} in {timeout:.0f}s")
                    time.sleep(0.3)

    def supervise(self, procs: list[Proc]) -> None:
        while not self.stopping:
            for proc in procs:
                if proc.popen.poll() is not None:
                    self.stderr.write(f"{proc.name} exited with code {proc.popen.returncode}; stopping the demo.")
                    return
            time.sleep(0.5)

    def on_signal(self, signum, frame) -> None:
        self.stopping = True

    def stop_all(self, procs: list[Proc]) -> None:
        running = [p for p in procs if p.popen and p.popen.poll() is None]
        for proc in running:
            os.killpg(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in running:
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait()
        self.stdout.write("Stopped: " + (", ".join(p.name for p in running) or "nothing was running"))
