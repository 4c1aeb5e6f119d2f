"""Fake Anthropic and OpenAI-compatible servers on loopback, for fault injection.

Real HTTP servers (http.server on 127.0.0.1, an ephemeral port, daemon threads, shut down by the test), so
the SDK's own retry, timeout and parsing code runs. Each request gets the next answer from a script
(`fault(n)` picks by request number); answers have the recorded shape of the real APIs. The server counts
requests and, per image, the answers that carried a label (what Anthropic would bill), so a test can count
work paid twice.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chimera.prompts import TOOL_NAME
from chimera.schema import example_analysis


def anthropic_message(with_tool: bool = True) -> dict:
    content = [{"type": "text", "text": "Recording the analysis."}]
    if with_tool:
        content.append({"type": "tool_use", "id": "toolu_01", "name": TOOL_NAME,
                        "input": example_analysis().model_dump(mode="json")})
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-opus-5", "content": content,
            "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": 1800, "output_tokens": 420, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 1500}}


def chat_completion() -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "Qwen/Qwen3-VL-8B-Instruct",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(example_analysis().model_dump(mode="json"))}}],
            "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}}


# what a fault looks like on the wire: (status, headers, body bytes)
FAULTS = {
    "ok": None,
    "429": (429, {"retry-after-ms": "10", "retry-after": "0"}, b'{"type":"error","error":{"type":"rate_limit_error"}}'),
    "500": (500, {"retry-after-ms": "10"}, b'{"type":"error","error":{"type":"api_error"}}'),
    "503": (503, {"retry-after-ms": "10"}, b'{"type":"error","error":{"type":"overloaded_error"}}'),
    "html": (200, {"content-type": "text/html"}, b"<html><body>502 Bad Gateway</body></html>"),
    "no_content": (200, {"content-type": "application/json"}, b'{"id":"msg_01","type":"message","role":"assistant"}'),
    "no_tool": "no_tool",
}


class FakeAPI:
    """`with FakeAPI(fault) as api:` serves /v1/messages (Anthropic) and /v1/chat/completions (OpenAI)."""

    def __init__(self, fault=lambda n: "ok", delay_s: float = 0.0):
        self.fault, self.delay_s = fault, delay_s
        self.requests = 0
        self.billed = Counter()   # image digest -> answers that carried a label
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with api.lock:
                    api.requests += 1
                    n = api.requests
                kind = api.fault(n)
                if api.delay_s:
                    time.sleep(api.delay_s)
                if kind in ("ok", "no_tool"):
                    anthropic = self.path.endswith("/messages")
                    payload = anthropic_message(kind == "ok") if anthropic else chat_completion()
                    if anthropic and kind == "ok":
                        with api.lock:
                            api.billed[api.image_digest(body)] += 1
                    self._send(200, {"content-type": "application/json"}, json.dumps(payload).encode())
                else:
                    self._send(*FAULTS[kind])

            def _send(self, status, headers, body):
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed mid-request (the SIGKILL test): nothing to answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @staticmethod
    def image_digest(body: bytes) -> str:
        """The image a request is about: the base64 data of its image block."""
        text = body.decode(errors="replace")
        start = text.find('"data"')
        return hashlib.sha256(text[start:start + 4000].encode()).hexdigest()[:12]

    @property
    def paid_twice(self) -> int:
        return sum(count - 1 for count in self.billed.values() if count > 1)

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
