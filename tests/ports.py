"""Free ports for the servers and SIP clients a test starts, below the kernel's ephemeral range.

A port from ``bind(("127.0.0.1", 0))`` comes from ``ip_local_port_range``, the range the kernel
also draws from for the local end of every outgoing connection (Redis, Postgres, httpx, the LLM).
Between the probe closing and the server binding it, a client can take it: CI once failed with
"address already in use". Ports below that range are never handed out implicitly, so only another
server could take one; ``free_port`` also never gives the same port (or its RTP twin) twice.
"""

import random
import socket
import threading

RTP_OFFSET = 2000  # the SIP endpoint's RTP ports start this far above its SIP port (tests/calls/conftest.py)
_LOWEST = 10000
_given: set[int] = set()
_lock = threading.Lock()


def _ephemeral_floor() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            return int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port(*, even: bool = False) -> int:
    """A port free for both TCP and UDP on loopback, with room for ``RTP_OFFSET`` above it."""
    highest = _ephemeral_floor() - RTP_OFFSET - 10
    with _lock:
        for _ in range(1000):
            port = random.randrange(_LOWEST, highest)
            if even and port % 2:
                port -= 1
            if port in _given or not _free(port):
                continue
            _given.update({port, port + RTP_OFFSET})
            return port
    raise RuntimeError(f"no free port between {_LOWEST} and {highest}")
