"""The Claude labeler: structured output through tool use, cached per (image, prompt, model), costed.

- The answer is the input of a forced tool call whose input schema is `analysis_json_schema()`, so it is
  parsed, not scraped from prose; it still goes through `parse_model_output` for aliases and ranges.
- Images are downscaled to the largest size Claude does not resize itself: long edge <= 1568 px and at
  most ~1.15 megapixels (tokens ~ width * height / 750, so a 1920x1080 frame becomes 1429x804, ~1,532 tokens).
  Both limits are parameters: newer models accept larger images.
- The system prompt carries `cache_control` so repeated requests read it from the prompt cache.
- Retries (429, 5xx, 529 overloaded, timeouts) are the SDK's: exponential backoff with jitter, honouring
  retry-after. `max_retries` comes from params.
- Interactive mode runs requests concurrently (bounded); batch mode uses the Message Batches API and
  records the batch id, so a re-run resumes a batch still in flight instead of paying again.
- Each finished label is one JSON file named by sha256(image sha256, prompt hash, model): a crash or
  Ctrl-C loses nothing and a re-run never pays twice. Failures are recorded, not cached.
- The API key comes only from the environment (`ANTHROPIC_API_KEY`, or `.env`); it is never logged or
  written anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from chimera.io import open_image, read_json, sha256_bytes, write_json
from chimera.prompts import PROMPT_HASH, SYSTEM_PROMPT, TOOL_DESCRIPTION, TOOL_NAME, USER_PROMPT
from chimera.schema import analysis_json_schema, parse_model_output

TOKENS_PER_PIXEL = 1 / 750


class MissingKeyError(RuntimeError):
    pass


@dataclass
class ClaudeConfig:
    model: str = "claude-opus-5"
    max_tokens: int = 2048
    max_long_edge: int = 1568
    max_megapixels: float = 1.15
    max_concurrency: int = 4
    max_retries: int = 6
    timeout_s: float = 120.0
    batch_poll_s: float = 30.0
    # dollars per million tokens
    price_input: float = 5.0
    price_output: float = 25.0
    price_cache_write: float = 6.25
    price_cache_read: float = 0.5
    batch_discount: float = 0.5


def api_key(env_file: str | Path = ".env") -> str:
    key = os.environ.get("ANTHROPIC_API_KEY")
    if not key and Path(env_file).exists():
        from dotenv import dotenv_values

        key = dotenv_values(env_file).get("ANTHROPIC_API_KEY")
    if not key:
        raise MissingKeyError("ANTHROPIC_API_KEY is not set: export it or put it in .env (git-ignored). "
                              "Offline, label synthetic frames with the truth labeler (label.backend: truth).")
    return key


def make_client(config: ClaudeConfig, http_client=None):
    import anthropic

    return anthropic.Anthropic(api_key=api_key(), max_retries=config.max_retries, timeout=config.timeout_s,
                               http_client=http_client)


def prepare_image(data: bytes, max_long_edge: int = 1568, max_megapixels: float = 1.15) -> tuple[bytes, tuple[int, int]]:
    """Downscale (never upscale) to the largest size Claude keeps as is; PNG bytes and the new size."""
    image = open_image(data)  # refuses decompression bombs before decoding
    w, h = image.size
    scale = min(1.0, max_long_edge / max(w, h), (max_megapixels * 1e6 / (w * h)) ** 0.5)
    if scale < 1.0:
        image = image.resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.LANCZOS)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "PNG")
    return buf.getvalue(), image.size


def image_tokens(size: tuple[int, int]) -> int:
    return round(size[0] * size[1] * TOKENS_PER_PIXEL)


# Commentary is context, never the answer: the labeler is told so, and the lines are quoted as data
COMMENTARY_PREAMBLE = ("Commentary from the video's subtitles around this frame, quoted below. It may be wrong, late, "
                       "or about another moment: use it only as a hint about what to look for. Every field comes from "
                       "what the image shows; where the image does not show it, answer null even if the commentary "
                       "says it.")


def commentary_block(lines: list[str]) -> str:
    quoted = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    return f"{COMMENTARY_PREAMBLE}\n<commentary>\n{quoted}\n</commentary>"


def request_params(config: ClaudeConfig, png: bytes, context: list[str] | None = None) -> dict[str, Any]:
    texts = ([{"type": "text", "text": commentary_block(context)}] if context else []) + [
        {"type": "text", "text": USER_PROMPT}]
    return {
        "model": config.model,
        "max_tokens": config.max_tokens,
        "system": [{"type": "text", "text": SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": analysis_json_schema()}],
        "tool_choice": {"type": "tool", "name": TOOL_NAME},
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": base64.standard_b64encode(png).decode()}},
            *texts]}],
    }


def usage_dict(usage) -> dict[str, int]:
    get = (lambda k: getattr(usage, k, 0)) if not isinstance(usage, dict) else usage.get
    return {k: int(get(k) or 0) for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                         "cache_read_input_tokens")}


def cost_usd(usage: dict[str, int], config: ClaudeConfig, batch: bool = False) -> float:
    dollars = (usage["input_tokens"] * config.price_input + usage["output_tokens"] * config.price_output
               + usage["cache_creation_input_tokens"] * config.price_cache_write
               + usage["cache_read_input_tokens"] * config.price_cache_read) / 1e6
    return dollars * (config.batch_discount if batch else 1.0)


def record_from_message(message, image_id: str, config: ClaudeConfig, batch: bool = False) -> dict:
    """A label record from an API message: the tool input parsed and validated, usage and cost."""
    blocks = [b for b in message.content if getattr(b, "type", None) == "tool_use" and b.name == TOOL_NAME]
    usage = usage_dict(message.usage)
    record = {"id": image_id, "labeler": "claude", "model": getattr(message, "model", config.model),
              "prompt_hash": PROMPT_HASH, "usage": usage, "cost_usd": cost_usd(usage, config, batch),
              "stop_reason": getattr(message, "stop_reason", None)}
    if not blocks:
        return {**record, "analysis": None, "errors": ["no record_analysis tool call in the answer"]}
    result = parse_model_output(json.dumps(blocks[0].input))
    return {**record, "analysis": result.analysis.model_dump(mode="json") if result.ok else None,
            "errors": result.errors, "warnings": result.warnings}


@dataclass
class LabelRun:
    records: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    cached: int = 0
    requested: int = 0

    def totals(self) -> dict:
        keys = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        paid = [r for r in self.records if not r.get("from_cache")]
        return {"labels": len(self.records), "failures": len(self.failures), "cache_hits": self.cached,
                "requests": self.requested,
                **{k: sum(r["usage"][k] for r in paid) for k in keys},
                "cost_usd": round(sum(r["cost_usd"] for r in paid), 6),
                "cost_usd_including_cached": round(sum(r["cost_usd"] for r in self.records), 6)}


class ClaudeLabeler:
    def __init__(self, config: ClaudeConfig, cache_dir: str | Path | None, client=None):
        """cache_dir None: no cache at all (Claude evaluated as a model answers every frame afresh)."""
        self.config = config
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._client = client

    @property
    def client(self):
        if self._client is None:
            self._client = make_client(self.config)
        return self._client

    def cache_path(self, image_sha: str, context: list[str] | None = None) -> Path:
        key = f"{image_sha}:{PROMPT_HASH}:{self.config.model}"
        if context:  # the same image with other commentary is another request
            key += ":" + hashlib.sha256(json.dumps(context).encode()).hexdigest()
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def _cached(self, image_sha: str, context: list[str] | None = None) -> dict | None:
        if self.cache_dir is None:
            return None
        path = self.cache_path(image_sha, context)
        return {**read_json(path), "from_cache": True} if path.exists() else None

    def _store(self, image_sha: str, record: dict, context: list[str] | None = None) -> None:
        if self.cache_dir is not None and record.get("analysis") is not None:
            write_json(self.cache_path(image_sha, context), record)

    def label_one(self, image_id: str, data: bytes, context: list[str] | None = None) -> dict:
        """One label; `context`: transcript lines around the frame, passed as commentary that may be wrong."""
        image_sha = sha256_bytes(data)
        cached = self._cached(image_sha, context)
        if cached:
            return cached
        png, size = prepare_image(data, self.config.max_long_edge, self.config.max_megapixels)
        start = time.perf_counter()
        message = self.client.messages.create(**request_params(self.config, png, context))
        record = record_from_message(message, image_id, self.config)
        record.update(latency_s=round(time.perf_counter() - start, 3), image_size=list(size),
                      image_tokens_estimate=image_tokens(size))
        if context:
            record["context"] = context
        self._store(image_sha, record, context)
        return record

    def label_many(self, items: list[tuple], progress: Callable | None = None) -> LabelRun:
        """Interactive mode: concurrent requests, each saved as soon as it finishes. Items are (id, bytes) or
        (id, bytes, transcript lines)."""
        import anthropic

        run = LabelRun()
        todo = []
        for item in items:
            image_id, data, context = (*item, None)[:3]
            cached = self._cached(sha256_bytes(data), context)
            if cached:
                run.records.append(cached)
                run.cached += 1
            else:
                todo.append((image_id, data, context))
        with ThreadPoolExecutor(max_workers=max(1, self.config.max_concurrency)) as pool:
            futures = {pool.submit(self.label_one, image_id, data, context): image_id for image_id, data, context in todo}
            for future in as_completed(futures):
                image_id = futures[future]
                run.requested += 1
                try:
                    record = future.result()
                except anthropic.APIError as exc:
                    run.failures.append({"id": image_id, "error": f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"})
                    continue
                except Exception as exc:  # noqa: BLE001 - an unreadable image or a malformed answer (no content,
                    # an HTML body) fails that item; every answer already paid for is kept and the batch goes on
                    run.failures.append({"id": image_id, "error": f"{type(exc).__name__}: {exc}"})
                    continue
                (run.records if record["analysis"] is not None else run.failures).append(
                    record if record["analysis"] is not None else {"id": image_id, "error": "; ".join(record["errors"])})
                if progress:
                    progress(1)
        return run

    # -- Message Batches ---------------------------------------------------------------------------

    def _batch_state_path(self) -> Path:
        return self.cache_dir / "batch_in_flight.json"

    def label_batch(self, items: list[tuple], sleep: Callable[[float], None] = time.sleep) -> LabelRun:
        """Batch mode: submit uncached items, poll until ended, collect. Resumes a batch still in flight. Items are
        (id, bytes) or (id, bytes, transcript lines)."""
        run = LabelRun()
        by_id, todo, context_of = {}, [], {}
        for item in items:
            image_id, data, context = (*item, None)[:3]
            cached = self._cached(sha256_bytes(data), context)
            if cached:
                run.records.append(cached)
                run.cached += 1
            else:
                by_id[image_id] = sha256_bytes(data)
                context_of[image_id] = context
                todo.append((image_id, data))
        if not todo:
            return run
        state_path = self._batch_state_path()
        state = read_json(state_path) if state_path.exists() else None
        if state and set(state["ids"]) == set(by_id) and state["model"] == self.config.model:
            batch_id = state["batch_id"]  # resume: never submit (and pay for) the same set twice
        else:
            requests = []
            for image_id, data in todo:
                png, _ = prepare_image(data, self.config.max_long_edge, self.config.max_megapixels)
                requests.append({"custom_id": image_id[:64],
                                 "params": request_params(self.config, png, context_of[image_id])})
            batch = self.client.messages.batches.create(requests=requests)
            batch_id = batch.id
            run.requested += 1
            write_json(state_path, {"batch_id": batch_id, "ids": sorted(by_id), "model": self.config.model})
        while True:
            batch = self.client.messages.batches.retrieve(batch_id)
            if batch.processing_status == "ended":
                break
            sleep(self.config.batch_poll_s)
        short = {image_id[:64]: image_id for image_id in by_id}
        for entry in self.client.messages.batches.results(batch_id):
            image_id = short.get(entry.custom_id, entry.custom_id)
            if entry.result.type != "succeeded":
                run.failures.append({"id": image_id, "error": f"batch result {entry.result.type}"})
                continue
            record = record_from_message(entry.result.message, image_id, self.config, batch=True)
            if record["analysis"] is None:
                run.failures.append({"id": image_id, "error": "; ".join(record["errors"])})
                continue
            self._store(by_id[image_id], record, context_of.get(image_id))
            run.records.append(record)
        state_path.unlink(missing_ok=True)
        return run

