"""The HTTP app: weights on demand from one generator loaded at startup.

    GET  /healthz        liveness (no auth)
    GET  /v1/metadata    what the generator is and what it accepts
    POST /v1/generate    a task (support set of inputs or raw sentences, descriptor, description,
                         sentences with a description, or a task id) -> weights
    GET  /openapi.json   the schema (FastAPI)

Generation runs in a fixed pool of threads (``settings.threads``), each request with its own
generator replica and its own seeded RNG. A request that is not done within ``timeout_s``
(waiting included) gets 504; its thread finishes the work and drops it. Requests beyond the
pool and its queue get 503 at once, so a burst cannot pile up unbounded work. Every error is a
JSON body ``{"error": "one sentence"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

import weightspace
from weightspace.errors import WeightspaceError
from weightspace.serve.limits import RequestGuard, ServeSettings
from weightspace.serve.schema import ErrorBody, GenerateRequest, Health, Metadata
from weightspace.serve.service import ServeError, WeightService

log = logging.getLogger("weightspace.serve")
_ERRORS = {code: {"model": ErrorBody} for code in (401, 413, 422, 503, 504)}
# One example request per way of saying what the weights are for (GET /v1/metadata: accepts).
REQUEST_EXAMPLES = {
    "support-set": {"summary": "a labelled support set (support-set generators)",
                    "value": {"support": {"x": [[0.0, 0.5, 1.0], [1.0, 0.5, 0.0]], "y": [0, 1]}, "n": 1, "best_of": 4}},
    "sentences": {"summary": "raw sentences (LoRA generators conditioned on a support set, e.g. text-support)",
                  "value": {"support": {"texts": ["I love a good pasta", "Pizza is the best food",
                                                  "The film was far too long", "That actor was brilliant"],
                                        "y": [0, 0, 1, 1]},
                            "deterministic": True, "format": "peft"}},
    "description": {"summary": "a plain-text description (text-description generators)",
                    "value": {"description": "English sentences about food vs movies", "n": 2, "format": "peft"}},
    "sentences-and-description": {
        "summary": "raw sentences and a description together (text-both generators)",
        "value": {"support": {"texts": ["I love a good pasta", "The film was far too long"], "y": [0, 1]},
                  "description": "English sentences about food vs movies", "deterministic": True, "format": "peft"}},
    "descriptor": {"summary": "a numeric task descriptor (descriptor generators)",
                   "value": {"descriptor": [30.0], "n": 4, "seed": 7}},
    "task": {"summary": "a task id of the generator's own family", "value": {"task": "rot=030.00", "best_of": 8}},
}


class GenerationPool:
    """Threads that run generations, with a bound on work in flight (running + queued)."""

    def __init__(self, threads: int, max_queue: int):
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="weightspace-gen")
        self.capacity = threads + max_queue
        self.in_flight = 0
        self._lock = threading.Lock()

    def submit(self, fn, *args):
        with self._lock:
            if self.in_flight >= self.capacity:
                raise ServeError(503, f"the server is busy ({self.in_flight} generations running or queued); retry shortly.")
            self.in_flight += 1
        future = self.executor.submit(fn, *args)
        future.add_done_callback(self._done)  # counts until the thread is free, even after a timeout
        return future

    def _done(self, _future) -> None:
        with self._lock:
            self.in_flight -= 1

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def create_app(generator_dir: str | Path, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    service = WeightService(generator_dir, settings)  # a bad directory fails here, before serving
    pool = GenerationPool(settings.threads, settings.max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        pool.shutdown()

    app = FastAPI(title="weightspace", version=weightspace.__version__, lifespan=lifespan,
                  description=f"Weights on demand from the {service.name} generator ({service.paper}).")
    app.state.service = service
    app.state.pool = pool
    app.add_middleware(RequestGuard, max_request_bytes=settings.max_request_bytes, token=settings.token)
    _add_error_handlers(app)

    @app.get("/healthz", response_model=Health, tags=["server"])
    async def healthz() -> dict:
        return {"status": "ok", "generator": service.name}

    @app.get("/v1/metadata", response_model=Metadata, responses={401: _ERRORS[401]}, tags=["weights"])
    async def metadata() -> dict:
        return service.metadata()

    @app.post("/v1/generate", tags=["weights"], response_class=Response, responses={
        200: {"description": "safetensors bytes (format=safetensors) or a zip of PEFT adapter folders (format=peft).",
              "content": {"application/octet-stream": {}, "application/zip": {}}},
        **_ERRORS})
    async def generate(req: Annotated[GenerateRequest, Body(openapi_examples=REQUEST_EXAMPLES)]) -> Response:
        service.check_limits(req)  # cheap refusals never take a thread
        future = pool.submit(service.generate, req)
        try:
            out = await asyncio.wait_for(asyncio.wrap_future(future), timeout=settings.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()  # frees the slot at once if the request was still queued
            raise ServeError(504, f"generation took longer than this server's limit of {settings.timeout_s:g} s; "
                                  "ask for fewer models or a smaller best_of, or raise --timeout-s.") from None
        headers = {**out.headers, "Content-Disposition": f'attachment; filename="{out.filename}"'}
        return Response(out.body, media_type=out.media_type, headers=headers)

    app.openapi = lambda: _openapi(app, settings)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def serve_error(_request: Request, exc: ServeError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(WeightspaceError)
    async def bad_input(_request: Request, exc: WeightspaceError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_sentence(exc.errors())}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"there is no {request.url.path} on this server; /openapi.json lists its endpoints."
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}."
        elif exc.status_code == 400 and "parsing the body" in str(exc.detail):
            message = "the request body could not be parsed as JSON (nested too deeply or not UTF-8)."
        else:
            message = str(exc.detail)
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error while serving a request")
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); the server log has the details."},
                            status_code=500)


def validation_sentence(errors: list[dict]) -> str:
    """One sentence from pydantic's list of errors (the first one; fixing it reveals the next)."""
    if not errors:
        return "the request is invalid."
    e = errors[0]
    loc = [p for p in e.get("loc", ()) if p != "body"]
    kind = e.get("type", "")
    msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "json_invalid":
        detail = (e.get("ctx") or {}).get("error", "")
        return f"the request body is not valid JSON ({detail}).".replace(" ()", "")
    if not loc:
        if kind in ("missing", "model_type", "model_attributes_type", "dict_type"):
            return "the request body must be a JSON object such as {\"support\": {\"x\": [[...]], \"y\": [...]}, \"n\": 1}."
        return f"{msg}."
    where = _path(loc)
    if kind == "extra_forbidden" and len(loc) == 2 and loc[0] == "support":
        return f"request field {where} is not known; the fields of support are x or texts, and y."
    if kind == "extra_forbidden":
        return (f"request field {where} is not known; the fields are support, descriptor, description, task, "
                "n, seed, best_of, deterministic and format.")
    if kind == "missing":
        return f"request field {where} is required."
    return f"request field {where}: {msg[0].lower() + msg[1:] if msg else 'invalid'}."


def _path(loc: list) -> str:
    out = ""
    for p in loc:
        # A client's key is echoed quoted unless it is a plain name, so a key such as "\n" cannot
        # break the one-line error.
        name = str(p) if str(p).isidentifier() else repr(str(p))
        out += f"[{p}]" if isinstance(p, int) else (f".{name}" if out else name)
    return out


def _openapi(app: FastAPI, settings: ServeSettings) -> dict:
    """FastAPI's schema plus the bearer scheme (the check itself runs in RequestGuard, before parsing)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        if settings.token is not None:
            schema.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path, ops in schema.get("paths", {}).items():
                if path.startswith("/v1/"):
                    for op in ops.values():
                        op["security"] = [{"bearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema
