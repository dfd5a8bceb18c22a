#!/usr/bin/env python3
"""Offline OpenAI-compatible embedding/LLM stub for the local R2R stack (stdlib only).

Started by ``scripts/stack up`` with the system python3; R2R reaches it through
``OPENAI_BASE_URL=http://127.0.0.1:7999/v1``.

Endpoints
  POST /v1/embeddings        deterministic hashing embeddings: lower-cased words plus
                             character trigrams of each word (weight 0.35), signed
                             blake2b feature hashing, tf weight 1+log(tf), L2-normalised.
                             Honours ``dimensions`` (default 512) and ``encoding_format``
                             ("float" or "base64"; the openai client asks for base64).
  POST /v1/chat/completions  canned deterministic answer (also as an SSE stream), so that
                             any LLM call R2R makes succeeds without a network.
  GET  /v1/models            the two model names.
  GET  /health               {"status": "ok", ...counters}

Control API (tests use it to simulate an embedding outage)
  GET  /control              current settings and counters
  POST /control              JSON {"fail_embeddings": bool, "delay_seconds": float}; either
                             key may be omitted.  fail -> /v1/embeddings answers HTTP 500;
                             delay -> sleep that long before answering /v1/embeddings.
  POST /control/reset        settings back to defaults (counters are kept)

Usage: python3 embed_stub.py [--host 127.0.0.1] [--port 7999]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN_RE = re.compile(r"\w+", re.UNICODE)
DEFAULT_DIM = 512
MAX_DELAY_SECONDS = 600.0

_lock = threading.Lock()
_counters = {"embedding_requests": 0, "embedded_texts": 0, "chat_requests": 0}
_DEFAULT_SETTINGS = {"fail_embeddings": False, "delay_seconds": 0.0}
_settings = dict(_DEFAULT_SETTINGS)


def _snapshot() -> dict:
    with _lock:
        return {**_settings, **_counters}


def _count(**deltas: int) -> None:
    with _lock:
        for key, delta in deltas.items():
            _counters[key] += delta


def _hash(feature: str) -> int:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def embed(text: str, dim: int) -> list[float]:
    vec = [0.0] * dim
    counts: dict[str, int] = {}
    for word in TOKEN_RE.findall(text.lower()):
        counts["w:" + word] = counts.get("w:" + word, 0) + 1
        padded = f"#{word}#"
        for i in range(len(padded) - 2):
            tri = "t:" + padded[i : i + 3]
            counts[tri] = counts.get(tri, 0) + 1
    for feat, tf in counts.items():
        h = _hash(feat)
        sign = 1.0 if (h >> 63) & 1 else -1.0
        weight = (1.0 + math.log(tf)) * (1.0 if feat.startswith("w:") else 0.35)
        vec[h % dim] += sign * weight
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:  # empty text: a fixed unit vector (a zero vector breaks cosine distance)
        vec[0] = 1.0
        return vec
    return [v / norm for v in vec]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "embed-stub/1"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus
        # delayed ACK add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # keep the log quiet
        pass

    def _send(self, code: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"{}")

    # ------------------------------------------------------------------ routing
    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/health", "/v1/health"):
            return self._send(200, {"status": "ok", **_snapshot()})
        if path == "/control":
            return self._send(200, _snapshot())
        if path == "/v1/models":
            return self._send(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": "text-embedding-3-small", "object": "model", "owned_by": "stub"},
                        {"id": "stub-llm", "object": "model", "owned_by": "stub"},
                    ],
                },
            )
        return self._send(404, {"error": {"message": f"unknown path {self.path}"}})

    def do_POST(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            req = self._read_json()
        except (ValueError, UnicodeDecodeError) as exc:
            return self._send(400, {"error": {"message": f"bad json: {exc}"}})
        if path == "/control":
            return self._control(req)
        if path == "/control/reset":
            with _lock:
                _settings.update(_DEFAULT_SETTINGS)
            return self._send(200, _snapshot())
        if path.endswith("/embeddings"):
            return self._embeddings(req)
        if path.endswith("/chat/completions"):
            return self._chat(req)
        return self._send(404, {"error": {"message": f"unknown path {self.path}"}})

    # ------------------------------------------------------------------ control
    def _control(self, req):
        if not isinstance(req, dict):
            return self._send(400, {"error": {"message": "expected a JSON object"}})
        unknown = set(req) - set(_DEFAULT_SETTINGS)
        if unknown:
            return self._send(400, {"error": {"message": f"unknown keys: {sorted(unknown)}"}})
        update: dict = {}
        if "fail_embeddings" in req:
            if not isinstance(req["fail_embeddings"], bool):
                return self._send(400, {"error": {"message": "fail_embeddings must be a bool"}})
            update["fail_embeddings"] = req["fail_embeddings"]
        if "delay_seconds" in req:
            delay = req["delay_seconds"]
            if (
                isinstance(delay, bool)
                or not isinstance(delay, (int, float))
                or not (0.0 <= float(delay) <= MAX_DELAY_SECONDS)
            ):
                return self._send(
                    400,
                    {"error": {"message": f"delay_seconds must be 0..{MAX_DELAY_SECONDS:g}"}},
                )
            update["delay_seconds"] = float(delay)
        with _lock:
            _settings.update(update)
        return self._send(200, _snapshot())

    # ------------------------------------------------------------------ OpenAI API
    def _embeddings(self, req):
        with _lock:
            fail = _settings["fail_embeddings"]
            delay = _settings["delay_seconds"]
        _count(embedding_requests=1)
        if delay > 0:
            time.sleep(delay)
        if fail:
            return self._send(
                500,
                {
                    "error": {
                        "message": "embed stub: simulated embedding outage (POST /control)",
                        "type": "server_error",
                        "code": "stub_outage",
                    }
                },
            )
        inp = req.get("input", "")
        if isinstance(inp, str):
            texts = [inp]
        elif inp and isinstance(inp[0], int):  # one pre-tokenised input
            texts = [" ".join(map(str, inp))]
        else:
            texts = [t if isinstance(t, str) else " ".join(map(str, t)) for t in inp]
        dim = int(req.get("dimensions") or DEFAULT_DIM)
        fmt = req.get("encoding_format") or "float"
        data = []
        for i, text in enumerate(texts):
            vec = embed(text, dim)
            value: list[float] | str = vec
            if fmt == "base64":
                value = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        _count(embedded_texts=len(texts))
        ntok = sum(len(TOKEN_RE.findall(t)) for t in texts)
        return self._send(
            200,
            {
                "object": "list",
                "data": data,
                "model": req.get("model", "stub"),
                "usage": {"prompt_tokens": ntok, "total_tokens": ntok},
            },
        )

    def _chat(self, req):
        _count(chat_requests=1)
        last = ""
        for msg in reversed(req.get("messages") or []):
            if msg.get("role") == "user":
                content = msg.get("content")
                last = content if isinstance(content, str) else json.dumps(content)
                break
        text = "STUB-LLM answer. " + last[:200].replace("\n", " ")
        model = req.get("model", "stub-llm")
        created = int(time.time())
        if req.get("stream"):
            chunk = {
                "id": "chatcmpl-stub",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": None,
                        "delta": {"role": "assistant", "content": text},
                    }
                ],
            }
            end = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            events = [json.dumps(chunk), json.dumps(end), "[DONE]"]
            body = "".join(f"data: {event}\n\n" for event in events).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None
        return self._send(
            200,
            {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7999)
    args = ap.parse_args()
    srv = Server((args.host, args.port), Handler)
    print(f"embed stub listening on http://{args.host}:{args.port}/v1", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
