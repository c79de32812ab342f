"""The guarded outbound HTTP client: every request to a URL that staff typed in (webhooks,
bot tools) goes through here, so a URL cannot reach the machine's own services or its
cloud's metadata endpoint (SSRF).

- http(s) only, no user name or password in the URL;
- the host is resolved ONCE, every address it resolves to must be allowed, and the
  request connects to the checked address (pinned: the URL's host becomes that IP, the
  ``Host`` header and TLS SNI / certificate check keep the real name), so a resolver that
  answers differently the second time (DNS rebinding) cannot redirect it;
- only globally routable addresses, unless ``OUTBOUND_ALLOW_PRIVATE`` (loopback, RFC 1918,
  CGNAT 100.64/10, ULA...) or the URL's origin is one of ``OUTBOUND_ALLOWED_ORIGINS`` (one
  known local receiver, such as the demo's, without opening every private address);
  link-local (169.254/16, fe80::/10), cloud metadata, multicast, unspecified and reserved
  addresses never;
- no redirects, no proxy from the environment, a deadline per request and at most
  ``OUTBOUND_MAX_RESPONSE_BYTES`` of a reply read;
- error replies are kept only as a short sanitised excerpt (``OUTBOUND_ERROR_EXCERPT_CHARS``).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import socket
import ssl
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from django.conf import settings

PRIVATE_SETTING = "VOICEBOT_OUTBOUND_ALLOW_PRIVATE"
# Link-local covers 169.254.169.254; these metadata services live elsewhere.
METADATA_NETWORKS = (ipaddress.ip_network("fd00:ec2::254/128"),  # AWS, over IPv6 (a ULA)
                     ipaddress.ip_network("100.100.100.200/32"))  # Alibaba Cloud (in CGNAT space)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
OWN_MESSAGE_CHARS = 500  # our own error messages (a refusal names the host): generous, still bounded


class OutboundRefused(ValueError):
    """The URL may not be requested; the message says why."""


class OutboundUnresolved(OutboundRefused):
    """The host does not resolve (perhaps only for now: senders may retry)."""


# --- Addresses -----------------------------------------------------------------------------

def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (::ffff:a.b.c.d, 6to4, NAT64), if any."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(address: str, *, allow_private: bool) -> str | None:
    """Why ``address`` may not be connected to (e.g. "a link-local address (never allowed)"), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)):
        return address_refusal(str(inner), allow_private=allow_private)
    if ip.is_link_local:
        return "a link-local address (never allowed)"
    if any(ip in network for network in METADATA_NETWORKS if network.version == ip.version):
        return "a cloud metadata address (never allowed)"
    if ip.is_multicast:
        return "a multicast address (never allowed)"
    if ip.is_unspecified:
        return "an unspecified address (never allowed)"
    if ip.is_reserved and not ip.is_loopback:  # ::1 sits in the reserved ::/8
        return "a reserved address (never allowed)"
    if ip.is_global or allow_private:
        return None
    kind = "a loopback" if ip.is_loopback else "a private" if ip.is_private else "a non-public (e.g. CGNAT 100.64/10)"
    return f"{kind} address (allowed only with {PRIVATE_SETTING}=true)"


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order: one lookup per request."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):  # gaierror is an OSError
        raise OutboundUnresolved(f"The host '{host}' does not resolve.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise OutboundUnresolved(f"The host '{host}' does not resolve.")
    return addresses


# --- URLs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """A checked URL and the address it was checked at: the request goes there and nowhere else."""

    url: httpx.URL
    address: str | None  # None when checked without resolving (at save time)

    @property
    def host(self) -> str:
        return self.url.raw_host.decode("ascii")

    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=self.address)

    def pinned_extensions(self) -> dict:
        return {"sni_hostname": self.host} if self.url.scheme == "https" else {}

    def host_header(self) -> str:
        return self.url.netloc.decode("ascii")


def parse_url(url: str) -> httpx.URL:
    """The URL, checked without any lookup: scheme, host, no credentials, no fragment."""
    try:
        parsed = httpx.URL(url)
        scheme = parsed.scheme
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise OutboundRefused(f"Not a valid URL: {exc}.") from None
    if scheme not in ("http", "https"):
        raise OutboundRefused(f"Use an http:// or https:// URL (got scheme '{scheme or 'none'}').")
    if not parsed.host:
        raise OutboundRefused("The URL has no host name.")
    if parsed.userinfo:
        raise OutboundRefused("Put no user name or password in the URL; receivers check the signature instead.")
    if parsed.fragment:
        raise OutboundRefused("Remove the #fragment: it is never sent to the receiver.")
    return parsed


def origin_of(parsed) -> str:
    """``scheme://host:port`` of a parsed URL, the port always written (http://127.0.0.1:80)."""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return f"{parsed.scheme}://{parsed.host.lower()}:{port}"


def allowed_origins() -> frozenset[str]:
    """``OUTBOUND_ALLOWED_ORIGINS`` in ``origin_of``'s form."""
    return frozenset(origin_of(parse_url(origin.rstrip("/") + "/")) for origin in settings.OUTBOUND_ALLOWED_ORIGINS
                     if origin.strip())


def check_url(url: str, *, resolve_host: bool = True, unresolved_ok: bool = False,
              allow_private: bool | None = None) -> Target:
    """Raise OutboundRefused saying what is wrong with ``url`` as a target; else the Target.

    Usable at save time (``resolve_host=False`` checks only the URL's form;
    ``unresolved_ok`` accepts a host that does not resolve yet, since the request is
    checked again anyway). ``allow_private`` defaults to ``settings.OUTBOUND_ALLOW_PRIVATE``.
    """
    parsed = parse_url(url)
    if not resolve_host:
        return Target(parsed, None)
    if allow_private is None:
        allow_private = settings.OUTBOUND_ALLOW_PRIVATE or origin_of(parsed) in allowed_origins()
    host = parsed.raw_host.decode("ascii")
    try:
        addresses = resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except OutboundUnresolved:
        if unresolved_ok:
            return Target(parsed, None)
        raise
    for address in addresses:
        reason = address_refusal(address, allow_private=allow_private)
        if reason:
            what = f"'{parsed.host}' is" if address == host else f"'{parsed.host}' resolves to {address},"
            raise OutboundRefused(f"{what} {reason}.")
    return Target(parsed, addresses[0])


# --- Replies -------------------------------------------------------------------------------

_HIDDEN_ELEMENTS = re.compile(r"<(script|style)\b.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[A-Za-z/!?][^>]*(>|$)")  # a tag, a comment, a doctype (not "a < b")


def sanitise(text: str, *, limit: int) -> str:
    """``text`` as one short plain line: markup and control/format characters gone, whitespace collapsed."""
    text = _TAGS.sub(" ", _HIDDEN_ELEMENTS.sub(" ", text))
    text = "".join(" " if unicodedata.category(ch).startswith(("C", "Z")) else ch for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def describe_error(exc: Exception) -> str:
    """A transport error or a refusal, as stored and shown (bounded, one line)."""
    prefix = "URL refused: " if isinstance(exc, OutboundRefused) and not isinstance(exc, OutboundUnresolved) else ""
    name = "" if isinstance(exc, OutboundRefused) else f"{type(exc).__name__}: "
    return sanitise(f"{prefix}{name}{exc}", limit=OWN_MESSAGE_CHARS)


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: httpx.Headers
    body: bytes  # at most OUTBOUND_MAX_RESPONSE_BYTES
    cut: str = ""  # why reading stopped early ("" when the whole reply was read)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self):
        """The reply's JSON (raises ValueError if it was cut short or is not JSON)."""
        if self.cut:
            raise ValueError(f"the reply was not read whole: {self.cut}")
        return json.loads(self.body)

    def excerpt(self) -> str:
        text = self.body.decode("utf-8", errors="replace")
        return sanitise(text, limit=settings.OUTBOUND_ERROR_EXCERPT_CHARS)

    def error(self) -> str:
        """"" for a 2xx; else the status and a short sanitised excerpt of the reply, never the body."""
        if self.ok:
            return ""
        if 300 <= self.status < 400:
            return f"HTTP {self.status}: redirects are not followed"
        excerpt = self.excerpt()
        return f"HTTP {self.status}: {excerpt}" if excerpt else f"HTTP {self.status}"


def _read_bounded(response: httpx.Response, *, limit: int, deadline: float) -> tuple[bytes, str]:
    """Read at most ``limit`` bytes, and nothing after ``deadline``: (body, why it was cut or "")."""
    chunks, size = [], 0
    for chunk in response.iter_raw():
        chunks.append(chunk[: limit - size])
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), f"over {limit} bytes"
        if time.monotonic() > deadline:
            return b"".join(chunks), "slower than the timeout"
    return b"".join(chunks), ""


# --- The client ----------------------------------------------------------------------------

class GuardedClient:
    """One httpx client behind the checks above; thread-safe like httpx.Client.

    No keep-alive: connections are pooled by address, so a kept one could carry a
    request for another host name at the same address over TLS verified for the
    first. No proxy from the environment (it would resolve the name itself).
    Identity encoding only, so the size bound counts what is held in memory.
    """

    def __init__(self, *, user_agent: str = "Voicebot/1", verify: ssl.SSLContext | bool = True):
        self._client = httpx.Client(
            follow_redirects=False, trust_env=False, verify=verify,
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"User-Agent": user_agent, "Accept-Encoding": "identity"})

    def post(self, url: str, *, content: bytes, headers: Mapping[str, str], timeout: float) -> OutboundResponse:
        """POST ``content`` to ``url`` (checked and pinned); raises OutboundRefused or httpx.HTTPError."""
        return self.request("POST", url, content=content, headers=headers, timeout=timeout)

    def request(self, method: str, url: str, *, content: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout: float) -> OutboundResponse:
        """Connecting, sending and waiting for the reply's head each get ``timeout``; the body is
        read until ``timeout`` after the start (then cut, like one over the size bound)."""
        target = check_url(url)
        started = time.monotonic()
        request = self._client.build_request(
            method, target.pinned_url(), content=content, timeout=timeout,
            headers={**(headers or {}), "Host": target.host_header()}, extensions=target.pinned_extensions())
        response = self._client.send(request, stream=True, follow_redirects=False)
        try:
            body, cut = _read_bounded(response, limit=settings.OUTBOUND_MAX_RESPONSE_BYTES,
                                      deadline=started + timeout)
        finally:
            response.close()
        return OutboundResponse(status=response.status_code, headers=response.headers, body=body, cut=cut)

    def close(self) -> None:
        self._client.close()


@functools.cache
def client(user_agent: str = "Voicebot/1") -> GuardedClient:
    """One guarded client per process and user agent (a TLS context costs tens of ms to build)."""
    return GuardedClient(user_agent=user_agent)
