"""`chimera serve`: the copilot over HTTP (FastAPI + uvicorn).

- POST /v1/analyze: one PNG/JPEG upload -> the Analysis JSON from any backend (local model, OpenAI-compatible
  server, Claude). Errors are answers, never a traceback: 413 too large, 415 not PNG/JPEG, 422 unreadable (or over
  the pixel limit), 503 queue full; anything unexpected is a 500 with a one-line message.
- Batching (local model): one worker takes the first waiting request, then whatever else arrives within
  `max_wait_ms` up to `batch_size`, and answers them with one generate call. An idle server adds at most
  max_wait_ms of latency; a busy one fills batches without waiting. The queue is bounded (`queue_size`): past it a
  request is refused with 503 at once rather than left to time out.
- POST /gsi: CS2 Game State Integration payloads; the cfg's auth token is checked (401 otherwise), the latest state
  per player is kept with its time (GET /gsi/latest) and every payload is appended to a JSONL log.
- GET /healthz, and the OpenAPI page at /docs.
"""

# no `from __future__ import annotations`: FastAPI reads the route annotations (UploadFile) at runtime

import asyncio
import time
from dataclasses import dataclass

from chimera.gsi import GsiStore

PNG_MAGIC, JPEG_MAGIC = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"


@dataclass
class ServeConfig:
    batch_size: int = 4           # most requests answered by one generate call
    max_wait_ms: float = 20.0     # how long the first request of a batch waits for company
    queue_size: int = 64          # waiting requests beyond this get 503
    max_upload_bytes: int = 20 * 2**20
    max_pixels: int | None = None  # None: chimera.io's limit (params screens.max_image_pixels); refused before decoding
    gsi_token: str | None = None  # the cfg's auth token; None: every GSI post is refused
    gsi_log: str | None = None


@dataclass
class _Job:
    id: str
    data: bytes
    future: asyncio.Future


def check_image(data: bytes, max_pixels: int) -> str | None:
    """None when the bytes decode within the pixel limit, else why not (the 422 detail): the pipeline's own check."""
    from chimera.io import open_image

    try:
        open_image(data, max_pixels)
    except ValueError as exc:
        return str(exc)
    return None


def create_app(backend, config: ServeConfig = ServeConfig()):
    """The FastAPI app around a backend (anything with .analyze([(id, bytes)]) -> [Prediction])."""
    from fastapi import FastAPI, File, HTTPException, Request, UploadFile
    from fastapi.responses import JSONResponse

    from chimera.io import sha256_bytes

    gsi = GsiStore(config.gsi_token, config.gsi_log)
    state: dict = {"queue": None, "worker": None, "served": 0, "batches": []}

    async def worker():
        queue: asyncio.Queue = state["queue"]
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await queue.get()]
            deadline = loop.time() + config.max_wait_ms / 1000
            while len(jobs) < config.batch_size:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    jobs.append(await asyncio.wait_for(queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            state["batches"].append(len(jobs))
            try:
                answers = await loop.run_in_executor(None, backend.analyze, [(j.id, j.data) for j in jobs])
                for job, answer in zip(jobs, answers):
                    if not job.future.done():
                        job.future.set_result(answer)
            except Exception as exc:  # noqa: BLE001 - the batch fails, each caller gets a clean 500, the server lives
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        state["queue"] = asyncio.Queue(maxsize=config.queue_size)
        state["worker"] = asyncio.create_task(worker())
        yield
        state["worker"].cancel()

    app = FastAPI(title="Chimera copilot", version="1", lifespan=lifespan,
                  description="A CS2 screenshot in, one JSON answer out (game_state, analysis, advice).")
    app.state.chimera = state

    @app.exception_handler(Exception)
    async def no_tracebacks(request: Request, exc: Exception):
        return JSONResponse(status_code=500, content={"detail": f"internal error: {type(exc).__name__}"})

    @app.get("/healthz")
    async def healthz():
        queue = state["queue"]
        return {"status": "ok", "backend": getattr(backend, "name", type(backend).__name__),
                "queued": queue.qsize() if queue else 0, "served": state["served"],
                "batch_size": config.batch_size, "gsi_players": len(gsi.latest)}

    @app.post("/v1/analyze")
    async def analyze(request: Request, image: UploadFile = File(..., description="A PNG or JPEG screenshot")):
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > config.max_upload_bytes + 65536:
            raise HTTPException(413, f"upload over {config.max_upload_bytes // 2**20} MiB")
        data = await image.read(config.max_upload_bytes + 1)
        if len(data) > config.max_upload_bytes:
            raise HTTPException(413, f"upload over {config.max_upload_bytes // 2**20} MiB")
        if not data:
            raise HTTPException(422, "empty upload")
        if not (data.startswith(PNG_MAGIC) or data.startswith(JPEG_MAGIC)):
            raise HTTPException(415, "not a PNG or JPEG image")
        problem = await asyncio.get_running_loop().run_in_executor(None, check_image, data, config.max_pixels)
        if problem:
            raise HTTPException(422, problem)
        job = _Job(sha256_bytes(data), data, asyncio.get_running_loop().create_future())
        try:
            state["queue"].put_nowait(job)
        except asyncio.QueueFull:
            raise HTTPException(503, "overloaded: too many requests waiting; retry shortly",
                                headers={"Retry-After": "1"}) from None
        start = time.perf_counter()
        try:
            answer = await job.future
        except Exception as exc:  # noqa: BLE001
            raise HTTPException(500, f"the model failed on this image ({type(exc).__name__})") from None
        state["served"] += 1
        record = answer.record(getattr(backend, "name", "model"))
        return {"id": job.id, "analysis": record["analysis"], "schema_valid": record["schema_valid"],
                "raw_text": record["raw_text"], "errors": record["errors"],
                "seconds": round(time.perf_counter() - start, 4)}

    @app.post("/gsi")
    async def gsi_ingest(request: Request):
        try:
            payload = await request.json()
        except ValueError:
            raise HTTPException(422, "not JSON") from None
        if not isinstance(payload, dict):
            raise HTTPException(422, "a GSI payload is a JSON object")
        if not gsi.accept(payload):
            raise HTTPException(401, "wrong or missing auth token (see the cfg from chimera gsi-config)")
        return {"ok": True}

    @app.get("/gsi/latest")
    async def gsi_latest():
        from chimera.gsi import game_state_from_gsi

        out = {}
        for player, entry in gsi.snapshot().items():
            game_state, known = game_state_from_gsi(entry["payload"])
            out[player] = {"time": entry["time"], "received": entry["received"],
                           "game_state": game_state.model_dump(mode="json"), "known_fields": known}
        return out

    return app


class ServerThread:
    """uvicorn in a background thread on a loopback port (tests, benchmarks, `chimera watch` beside a server)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.url = f"http://{host}:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))

    def __enter__(self):
        import threading

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            time.sleep(0.01)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)

