"""Server settings, and the guard every request passes before any handler reads its body.

``RequestGuard`` is a plain ASGI middleware, so it acts before FastAPI parses anything:

1. a bearer token, when one is set, is checked first (constant-time compare): a client without
   it is turned away with 401 before it can make the server read a single body byte;
2. a declared ``Content-Length`` above the limit is refused with 413 at once;
3. a body sent without a length (chunked) or longer than declared is counted while it streams
   and refused with 413 as soon as it passes the limit, so the server never buffers more than
   the limit for one request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weightspace.config import option, validate

# Paths anyone may read: load balancers probe /healthz, and the schema holds no secrets.
PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


@dataclass
class ServeSettings:
    token: str | None = option(None, "bearer token clients must send (Authorization: Bearer ...); None = no auth")
    max_request_bytes: int = option(8 * 1024 * 1024, "largest request body accepted; a Fashion-MNIST support set of "
                                                     "100 images is ~0.5 MB of JSON", min=1)
    timeout_s: float = option(30.0, "longest a generation may take (queueing included) before the client gets 504")
    threads: int = option(2, "generation threads; each holds its own copy of the generator", min=1)
    max_n: int = option(64, "most models one request may ask for", min=1)
    max_best_of: int = option(32, "largest best_of one request may ask for", min=1)
    max_candidates: int = option(512, "most candidates (n * best_of) one request may make the server draw and score", min=1)
    max_support: int = option(2000, "most labelled examples in one support set", min=1)
    max_sentences: int = option(256, "most raw sentences in one support set (each is a MiniLM forward pass)", min=1)
    max_sentence_chars: int = option(2000, "longest raw sentence, in characters (sentences are cut to the model's "
                                           "max_length tokens anyway)", min=1)
    max_queue: int = option(64, "requests waiting for a thread beyond this are refused with 503 (back-pressure)", min=1)

    def __post_init__(self):
        from weightspace.errors import WeightspaceError

        validate(self, where="server setting")
        if not self.timeout_s > 0:
            raise WeightspaceError(f"server setting timeout_s must be positive, got {self.timeout_s}.")
        if self.token is not None and not self.token.strip():
            raise WeightspaceError("the server token is empty; give a non-empty --token (or unset WEIGHTSPACE_TOKEN).")


class RequestTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit; FastAPI re-raises HTTPExceptions
    met while reading a body, so the app's handler turns it into a 413 JSON error."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than this server's limit of {limit} bytes; "
                              "send a smaller support set or raise --max-request-bytes.")


def token_matches(header: bytes | None, token: str) -> bool:
    """True iff ``header`` is ``Bearer <token>``.

    Both sides are hashed first, so the compare takes the same time whatever the header's length
    and wherever it differs: timing tells an attacker nothing about the token.
    """
    expected = hashlib.sha256(b"Bearer " + token.encode()).digest()
    return hmac.compare_digest(hashlib.sha256(header or b"").digest(), expected)


async def send_json_error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    def __init__(self, app: ASGIApp, max_request_bytes: int, token: str | None = None):
        self.app = app
        self.limit = int(max_request_bytes)
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.token is not None and scope.get("path") not in PUBLIC_PATHS:
            if not token_matches(headers.get(b"authorization"), self.token):
                await send_json_error(send, 401, "this server needs a bearer token: send the header "
                                                 "'Authorization: Bearer <token>' with the server's token.",
                                      [(b"www-authenticate", b"Bearer")])
                return
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await send_json_error(send, 400, "the Content-Length header is not a whole number of bytes.")
                return
            if int(declared) > self.limit:
                await send_json_error(send, 413, RequestTooLarge(self.limit).detail)
                return
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise RequestTooLarge(self.limit)
            return message

        await self.app(scope, counted_receive, send)
