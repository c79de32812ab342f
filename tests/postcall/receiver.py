"""A local webhook receiver on loopback: records every POST and answers as told.

``script`` is a list of behaviours consumed one per request ("ok", "503", "hang");
when it runs out, ``default`` applies. ``stop()`` and ``start()`` on the same
port simulate a receiver that is down and comes back.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, script=None, default="ok", port=0):
        self.script, self.default = list(script or []), default
        self.requests: list[dict] = []
        self.port = port
        self.server = None
        self.release = threading.Event()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    behaviour = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver.requests.append({"headers": dict(self.headers), "body": body, "at": time.time(),
                                              "answer": behaviour, "path": self.path})
                if behaviour == "hang":
                    receiver.release.wait(120)
                    return
                code = 200 if behaviour == "ok" else int(behaviour)
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"thanks" if code < 300 else b"receiver failing")

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_for(self, count: int, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver got {len(self.requests)} request(s), expected {count}")
            time.sleep(0.05)
        return self.requests
