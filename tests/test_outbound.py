"""The guarded outbound client (voicebot.outbound), for webhooks and bot tools alike.

Real HTTP servers on 127.0.0.1 and the real DNS path: ``socket.getaddrinfo`` is
replaced by a scripted resolver (the guard's lookup and, if the client failed to pin
the checked address, the connection's own second lookup both go through it), and
connections to the public test address are routed to a local "public" server, so no
test sends anything off this machine.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.forms import modelform_factory

from pipelines.dialogue.actions import ActionRunner
from postcall import webhooks
from postcall.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from voicebot import outbound
from voicebot.admin import BotToolInline
from voicebot.models import BotTool

PUBLIC = "93.184.215.14"  # a globally routable address; connections to it are routed to a local server


# --- A local server that stands in for a receiver --------------------------------------------

class Server:
    """Records every request; answers as ``behaviour`` says (json, redirect, huge, slow, error_html)."""

    def __init__(self, behaviour: str = "json", *, location: str = "", tls: ssl.SSLContext | None = None):
        self.behaviour, self.location = behaviour, location
        self.requests: list[dict] = []
        self.bytes_written = 0
        self.answered = 0  # requests whose answer ended (written whole, or the client hung up)
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                try:
                    getattr(server, f"answer_{server.behaviour}")(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what the bound is for
                finally:
                    server.answered += 1

            do_GET = do_PUT = do_POST  # a followed redirect would arrive as a GET (302) or a POST (307)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _head(self, handler, code: int, content_type: str, length: int | None = None, **extra):
        handler.send_response(code)
        handler.send_header("Content-Type", content_type)
        if length is not None:
            handler.send_header("Content-Length", str(length))
        for name, value in extra.items():
            handler.send_header(name, value)
        handler.end_headers()

    def _write(self, handler, data: bytes):
        handler.wfile.write(data)
        handler.wfile.flush()
        self.bytes_written += len(data)

    def answer_json(self, handler):
        body = b'{"say": "Booked for Tuesday."}'
        self._head(handler, 200, "application/json", len(body))
        self._write(handler, body)

    def answer_redirect(self, handler):
        self._head(handler, 302, "text/plain", 0, Location=self.location)

    def answer_huge(self, handler):  # 50 MB of JSON-looking text
        self._head(handler, 200, "application/json", 50 * 1024 * 1024)
        chunk = b'{"say": "' + b"x" * 65526 + b'"}'
        for _ in range(800):
            if self.stop.is_set():
                return
            self._write(handler, chunk)

    def answer_slow(self, handler):  # a byte every 0.1 s, for a minute
        self._head(handler, 200, "application/json", 600)
        for _ in range(600):
            if self.stop.is_set():
                return
            self._write(handler, b" ")
            time.sleep(0.1)

    def answer_error_html(self, handler):
        body = ("<!DOCTYPE html><html><head><style>body{color:red}</style><script>steal(document.cookie)</script>"
                "</head><body><h1>Internal\x00 Server\x1b Error</h1>\n\n\t<p>Trace:   "
                + "at frame " * 1000 + "</p></body></html>").encode()
        self._head(handler, 500, "text/html", len(body))
        self._write(handler, body)

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    started = []

    def start(behaviour="json", **kwargs) -> Server:
        started.append(Server(behaviour, **kwargs))
        return started[-1]

    yield start
    for server in started:
        server.close()


# --- The network: a scripted resolver, and the public address routed to a local server ----------

class Network:
    def __init__(self, monkeypatch):
        self.answers: dict[str, list[list[str]]] = {}  # name -> answers, one per lookup (the last repeats)
        self.lookups: list[str] = []
        self.public_routes: dict[str, Server] = {}
        self.connections: list[tuple[str, int]] = []
        real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection

        def getaddrinfo(host, port, *args, **kwargs):
            name = host.decode() if isinstance(host, bytes) else host
            if name not in self.answers:
                return real_getaddrinfo(host, port, *args, **kwargs)
            self.lookups.append(name)
            queue = self.answers[name]
            addresses = queue.pop(0) if len(queue) > 1 else queue[0]
            if not addresses:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (a, port) if ":" not in a else (a, port, 0, 0)) for a in addresses]

        def create_connection(address, *args, **kwargs):
            self.connections.append(address)
            host = address[0]
            if host in self.public_routes:  # the "internet": a local server, whatever the port
                return real_connect(("127.0.0.1", self.public_routes[host].port), *args, **kwargs)
            if host == PUBLIC:
                raise AssertionError(f"unrouted public address {host}")
            return real_connect(address, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket, "create_connection", create_connection)

    def resolve(self, name: str, *answers: list[str]) -> None:
        """``name`` answers ``answers[0]`` on the first lookup, ``answers[1]`` on the next..."""
        self.answers[name] = [list(a) for a in answers]

    def route(self, address: str, server: Server) -> None:
        self.public_routes[address] = server


@pytest.fixture
def network(monkeypatch, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    outbound.client.cache_clear()
    yield Network(monkeypatch)
    outbound.client.cache_clear()


def tool(url: str, **extra):
    return SimpleNamespace(name="create_booking", description="", parameters={}, url=url, secret="tool-secret",
                           timeout_sec=extra.pop("timeout_sec", 3.0), speak_response=True, **extra)


# --- The address rules ---------------------------------------------------------------------------

@pytest.mark.parametrize("address, private_allowed, refusal", [
    ("8.8.8.8", False, None),
    ("2606:4700::1111", False, None),
    ("127.0.0.1", False, "a loopback address (allowed only with VOICEBOT_OUTBOUND_ALLOW_PRIVATE=true)"),
    ("127.0.0.1", True, None),
    ("::1", False, "a loopback address"),
    ("10.1.2.3", False, "a private address"),
    ("192.168.1.5", True, None),
    ("100.64.0.1", False, "CGNAT"),  # carrier-grade NAT: not private in Python's sense, not global either
    ("100.127.255.254", False, "CGNAT"),
    ("169.254.169.254", True, "a link-local address (never allowed)"),
    ("fe80::1%eth0", True, "a link-local address (never allowed)"),
    ("fd00:ec2::254", True, "a cloud metadata address (never allowed)"),
    ("100.100.100.200", True, "a cloud metadata address (never allowed)"),
    ("::ffff:169.254.169.254", True, "a link-local address"),  # IPv4-mapped
    ("::ffff:127.0.0.1", False, "a loopback address"),
    ("2002:7f00:1::", False, "a loopback address"),  # 6to4 of 127.0.0.1 (is_global says True)
    ("64:ff9b::a9fe:a9fe", True, "a link-local address"),  # NAT64 of 169.254.169.254
    ("224.0.0.251", True, "a multicast address (never allowed)"),
    ("0.0.0.0", True, "an unspecified address (never allowed)"),
    ("240.0.0.1", True, "a reserved address (never allowed)"),
])
def test_only_global_addresses_unless_private_allowed_and_link_local_never(address, private_allowed, refusal):
    reason = outbound.address_refusal(address, allow_private=private_allowed)
    if refusal is None:
        assert reason is None
    else:
        assert reason is not None and refusal in reason


@pytest.mark.parametrize("url, message", [
    ("ftp://hooks.example.test/x", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("https://user:pw@hooks.example.test/x", "no user name or password"),
    ("https://:pw@hooks.example.test/x", "no user name or password"),
    ("http:///x", "no host name"),
    ("http://[::1/x", "Not a valid URL"),
])
def test_urls_of_the_wrong_form_are_refused_without_a_lookup(network, url, message):
    with pytest.raises(outbound.OutboundRefused, match=message):
        outbound.check_url(url)
    assert network.lookups == []


def test_the_refusal_names_the_host_and_the_address(network):
    network.resolve("example.test", ["169.254.169.254"])
    with pytest.raises(outbound.OutboundRefused) as info:
        outbound.check_url("https://example.test/hook")
    assert str(info.value) == "'example.test' resolves to 169.254.169.254, a link-local address (never allowed)."
    network.resolve("mixed.example.test", [PUBLIC, "10.0.0.7"])  # ANY bad address refuses the host
    with pytest.raises(outbound.OutboundRefused, match="resolves to 10.0.0.7, a private address"):
        outbound.check_url("https://mixed.example.test/hook")
    network.resolve("fine.example.test", [PUBLIC])
    assert outbound.check_url("https://fine.example.test/hook").address == PUBLIC


# --- Pinning: one lookup, the request goes to the checked address -----------------------------------

def test_a_rebinding_resolver_cannot_send_a_webhook_to_loopback(db, network, servers, company_a):
    loopback, public = servers(), servers()
    network.resolve("rebind.example.test", [PUBLIC], ["127.0.0.1"])  # public when checked, loopback after
    network.route(PUBLIC, public)
    endpoint = WebhookEndpoint.objects.create(company=company_a, url=f"http://rebind.example.test:{loopback.port}/hook",
                                              events=["call.ended"], secret="whsec_x")
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="call.ended", event_key="k1",
                                              payload={"n": 1})

    webhooks.attempt(str(delivery.pk), 1)

    assert loopback.requests == []
    assert len(public.requests) == 1  # it went to the address that was checked
    assert public.requests[0]["headers"]["Host"] == f"rebind.example.test:{loopback.port}"
    assert network.lookups == ["rebind.example.test"]  # resolved once
    assert network.connections == [(PUBLIC, loopback.port)]
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_a_rebinding_resolver_cannot_send_a_tool_call_to_loopback(network, servers):
    loopback, public = servers(), servers()
    network.resolve("tools.example.test", [PUBLIC], ["127.0.0.1"])
    network.route(PUBLIC, public)

    result = ActionRunner([tool(f"http://tools.example.test:{loopback.port}/book")]).call_tool("create_booking", {})

    assert loopback.requests == []
    assert len(public.requests) == 1 and result.ok and result.say == "Booked for Tuesday."
    assert public.requests[0]["headers"]["Host"] == f"tools.example.test:{loopback.port}"
    assert network.lookups == ["tools.example.test"]


def _tls_for(name: str):
    """A throwaway CA, a server certificate for ``name`` signed by it, and a client context trusting the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def cert(subject, issuer, key, sign_key, *, ca: bool, san=None):
        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(hours=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        return builder.sign(sign_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Voicebot test CA")])
    ca_cert = cert(ca_name, ca_name, ca_key, ca_key, ca=True)
    leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ca_name, key, ca_key, ca=False, san=name)
    pem = serialization.Encoding.PEM
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    import tempfile

    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as chain:
        chain.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        chain.write(leaf.public_bytes(pem))
        chain.flush()
        server.load_cert_chain(chain.name)
    client = ssl.create_default_context(cadata=ca_cert.public_bytes(pem).decode())
    return server, client


def test_https_is_pinned_yet_the_certificate_is_checked_for_the_real_name(network, servers):
    server_tls, client_tls = _tls_for("hooks.example.test")
    public = servers(tls=server_tls)
    network.route(PUBLIC, public)
    network.resolve("hooks.example.test", [PUBLIC], ["127.0.0.1"])
    network.resolve("other.example.test", [PUBLIC])
    guarded = outbound.GuardedClient(verify=client_tls)

    response = guarded.post("https://hooks.example.test/hook", content=b"{}", headers={}, timeout=5)
    assert response.status == 200 and response.json() == {"say": "Booked for Tuesday."}
    assert public.requests[0]["headers"]["Host"] == "hooks.example.test"
    # The same server for a name its certificate does not cover: refused by TLS, as without pinning.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED|certificate"):
        guarded.post("https://other.example.test/hook", content=b"{}", headers={}, timeout=5)
    assert len(public.requests) == 1


def test_no_proxy_from_the_environment(network, servers, monkeypatch):
    proxy, public = servers(), servers()
    network.route(PUBLIC, public)
    network.resolve("hooks.example.test", [PUBLIC])
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    response = outbound.GuardedClient().post("http://hooks.example.test/h", content=b"{}", headers={}, timeout=5)
    assert response.status == 200 and proxy.requests == [] and len(public.requests) == 1


# --- Tools: refused at save and at call time -------------------------------------------------------

@pytest.mark.parametrize("url, private_allowed, message", [
    ("http://169.254.169.254/latest/meta-data", True, "link-local address (never allowed)"),
    ("http://metadata.example.test/x", True, "resolves to 169.254.169.254, a link-local address"),
    ("http://127.0.0.1:8080/book", False, "loopback address"),
    ("http://localhost.example.test/book", False, "resolves to 127.0.0.1, a loopback address"),
    ("http://cgnat.example.test/book", False, "resolves to 100.64.3.4"),
    ("https://user:pw@tools.example.test/book", False, "no user name or password"),
])
def test_a_bad_tool_url_is_refused_when_saved_on_the_url_field(network, bot_a, settings, url, private_allowed,
                                                               message):
    settings.OUTBOUND_ALLOW_PRIVATE = private_allowed
    network.resolve("metadata.example.test", ["169.254.169.254"])
    network.resolve("localhost.example.test", ["127.0.0.1"])
    network.resolve("cgnat.example.test", ["100.64.3.4"])
    with pytest.raises(ValidationError) as info:
        BotTool(bot=bot_a, name="book", description="Books", url=url).full_clean()
    assert message in " ".join(info.value.message_dict["url"])


def test_the_admin_tool_form_refuses_link_local_and_keeps_a_good_url(network, bot_a, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True  # even so: link-local never
    network.resolve("tools.example.test", [PUBLIC])
    form_class = modelform_factory(BotTool, fields=BotToolInline.fields)
    data = {"name": "book", "description": "Books", "parameters": "{}", "secret": "", "timeout_sec": "5",
            "active": "on", "speak_response": "on"}
    bad = form_class({**data, "url": "http://169.254.169.254/latest"}, instance=BotTool(bot=bot_a))
    assert not bad.is_valid()
    assert "link-local" in " ".join(bad.errors["url"])
    good = form_class({**data, "url": "https://tools.example.test/book"}, instance=BotTool(bot=bot_a))
    assert good.is_valid(), good.errors
    settings.OUTBOUND_ALLOW_PRIVATE = False
    assert not form_class({**data, "url": "http://127.0.0.1:8080/book"}, instance=BotTool(bot=bot_a)).is_valid()


def test_the_bot_admin_page_refuses_a_link_local_tool(network, client_a, bot_a):
    from tests.dialogue.test_admin_chat import _bot_form

    form = _bot_form(bot_a, "[]")
    form.update({"tools-TOTAL_FORMS": 1, "tools-0-id": "", "tools-0-name": "book", "tools-0-description": "Books",
                 "tools-0-url": "http://169.254.169.254/latest/meta-data", "tools-0-parameters": "{}",
                 "tools-0-timeout_sec": "5", "tools-0-active": "on", "tools-0-bot": bot_a.pk})
    from django.urls import reverse

    response = client_a.post(reverse("admin:voicebot_bot_change", args=[bot_a.pk]), form)
    assert response.status_code == 200
    assert "link-local address (never allowed)" in response.content.decode()
    assert not BotTool.objects.filter(bot=bot_a).exists()


def test_a_tool_saved_earlier_whose_host_now_resolves_to_loopback_is_refused_and_gets_nothing(network, bot_a,
                                                                                            servers):
    loopback = servers()
    network.resolve("tools.example.test", [PUBLIC], ["127.0.0.1"])  # public when saved, loopback at call time
    saved = BotTool(bot=bot_a, name="create_booking", description="Books", secret="s",
                    url=f"http://tools.example.test:{loopback.port}/book")
    saved.full_clean()
    saved.save()

    result = ActionRunner([saved]).call_tool("create_booking", {"date": "tuesday"})

    assert not result.ok and result.status is None
    assert result.error == ("URL refused: 'tools.example.test' resolves to 127.0.0.1, a loopback address "
                            "(allowed only with VOICEBOT_OUTBOUND_ALLOW_PRIVATE=true).")
    assert loopback.requests == [] and network.connections == []


def test_a_tool_resolving_to_cgnat_is_refused_at_call_time(network, servers):
    network.resolve("carrier.example.test", ["100.64.0.9"])
    result = ActionRunner([tool("http://carrier.example.test/book")]).call_tool("create_booking", {})
    assert not result.ok and "100.64.0.9" in result.error and "CGNAT" in result.error
    assert network.connections == []


def test_a_webhook_resolving_to_cgnat_is_refused_and_not_retried(db, network, company_a):
    network.resolve("carrier.example.test", ["100.64.0.9"])
    endpoint = WebhookEndpoint(company=company_a, url="https://carrier.example.test/h", events=["call.ended"],
                               secret="x")
    with pytest.raises(ValidationError, match="CGNAT"):
        endpoint.full_clean()
    result = webhooks.post(WebhookDelivery(endpoint=endpoint, event="call.ended", event_key="k", payload={}))
    assert result.error.startswith("URL refused: 'carrier.example.test' resolves to 100.64.0.9")
    assert not result.retryable and network.connections == []


def test_a_host_that_does_not_resolve_at_send_time_is_retried(db, network, company_a):
    network.resolve("gone.example.test", [])
    endpoint = WebhookEndpoint(company=company_a, url="https://gone.example.test/h", events=["call.ended"],
                               secret="x")
    result = webhooks.post(WebhookDelivery(endpoint=endpoint, event="call.ended", event_key="k", payload={}))
    assert result.error == "The host 'gone.example.test' does not resolve." and result.retryable


# --- Redirects, size, time ----------------------------------------------------------------------

def test_redirects_are_not_followed(db, network, servers, company_a):
    target = servers()
    redirector = servers("redirect", location=f"http://127.0.0.1:{target.port}/internal")
    network.route(PUBLIC, redirector)
    network.resolve("hooks.example.test", [PUBLIC])

    result = ActionRunner([tool("http://hooks.example.test/book")]).call_tool("create_booking", {})
    assert (result.ok, result.status) == (False, 302)
    endpoint = WebhookEndpoint.objects.create(company=company_a, url="http://hooks.example.test/h",
                                              events=["call.ended"], secret="x")
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="call.ended", event_key="k", payload={})
    webhooks.attempt(str(delivery.pk), 1)

    assert target.requests == [] and len(redirector.requests) == 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_response_code) == ("failed", 302)
    assert delivery.last_error == "HTTP 302: redirects are not followed"


def test_a_huge_reply_is_read_only_up_to_the_limit(network, servers, settings):
    settings.OUTBOUND_MAX_RESPONSE_BYTES = 64 * 1024
    huge = servers("huge")
    network.route(PUBLIC, huge)
    network.resolve("hooks.example.test", [PUBLIC])

    started = time.monotonic()
    response = outbound.client().post("http://hooks.example.test/h", content=b"{}", headers={}, timeout=10)
    assert time.monotonic() - started < 5
    assert response.status == 200 and len(response.body) == 64 * 1024
    assert response.cut == "over 65536 bytes"
    result = ActionRunner([tool("http://hooks.example.test/book")]).call_tool("create_booking", {})
    assert result.status == 200 and result.data is None and result.say == ""  # a cut reply is never parsed
    assert "not read whole: over 65536 bytes" in result.error
    deadline = time.monotonic() + 10  # both answers end: cut off by the client hanging up, or written whole
    while huge.answered < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert huge.answered == 2 and huge.bytes_written < 50 * 1024 * 1024  # the server was stopped, not drained


def test_a_slow_reply_is_cut_at_the_timeout(network, servers):
    slow = servers("slow")
    network.route(PUBLIC, slow)
    network.resolve("hooks.example.test", [PUBLIC])

    started = time.monotonic()
    result = ActionRunner([tool("http://hooks.example.test/book", timeout_sec=1.0)]).call_tool("create_booking", {})
    elapsed = time.monotonic() - started
    assert elapsed < 3, elapsed  # the reply drips for a minute; each byte alone beats the read timeout
    assert result.status == 200 and "slower than the timeout" in result.error


# --- Error replies: status and a short sanitised excerpt, never the body ---------------------------

def test_an_error_reply_is_stored_only_as_a_short_sanitised_excerpt(db, network, servers, company_a, settings):
    settings.OUTBOUND_ERROR_EXCERPT_CHARS = 80
    failing = servers("error_html")
    network.route(PUBLIC, failing)
    network.resolve("hooks.example.test", [PUBLIC])
    endpoint = WebhookEndpoint.objects.create(company=company_a, url="http://hooks.example.test/h",
                                              events=["call.ended"], secret="x")
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="call.ended", event_key="k", payload={})

    webhooks.attempt(str(delivery.pk), 1)

    stored = WebhookAttempt.objects.get(delivery=delivery).error
    assert stored.startswith("HTTP 500: Internal Server Error Trace: at frame at frame")
    assert len(stored) <= len("HTTP 500: ") + 80 and stored.endswith("…")
    for leaked in ("<", ">", "\x00", "\x1b", "\n", "\t", "steal", "color:red", "  "):
        assert leaked not in stored
    delivery.refresh_from_db()
    assert delivery.last_error == stored and delivery.status == "retrying"
    result = ActionRunner([tool("http://hooks.example.test/book")]).call_tool("create_booking", {})
    assert result.error.startswith("HTTP 500: Internal Server Error") and len(result.error) <= 90


def test_the_admin_shows_stored_errors_as_escaped_excerpts(db, client_a, company_a):
    endpoint = WebhookEndpoint.objects.create(company=company_a, url="https://hooks.example.test/h",
                                              events=["call.ended"], secret="x")
    legacy = "<b onmouseover=alert(1)>Bad gateway</b>\x07 " + "<i>x</i>" * 200  # a row stored before the guard
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="call.ended", event_key="k", payload={},
                                              last_error=legacy, attempts=1, status="failed")
    WebhookAttempt.objects.create(delivery=delivery, number=1, attempted_at=delivery.created_at, error=legacy)
    page = client_a.get(f"/admin/postcall/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "<b " not in page and "<i>" not in page  # never markup from a reply
    assert page.count("Bad gateway x x x") == 2  # last error and the attempt's error, sanitised
    assert "&lt;i&gt;x" not in page  # not the raw text escaped either (the attempt's own name shows 40 chars)
