"""Generation backends behind one interface: `analyze(images) -> list[Prediction]`.

- LocalBackend: transformers generate, batched, left-padded, sorted by image size (similar sizes share a
  batch, so little padding), greedy by default, stopping as soon as the JSON object closes.
- OpenAICompatBackend: a chat-completions server (vLLM, SGLang) serving Qwen3-VL, concurrent requests and
  guided JSON through `response_format` json_schema where the server supports it.
- ClaudeBackend: the labeler's client, as the SOTA baseline.
Every output goes through `parse_model_output`. An unreadable image is a failed prediction for that frame,
never a crash of the batch.
"""

from __future__ import annotations

import base64
import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from PIL import Image

from chimera.io import open_image
from chimera.prompts import PROMPT_HASH, SYSTEM_PROMPT, USER_PROMPT, chat_messages
from chimera.schema import (ParseResult, decoding_json_schema, decoding_token_bound,
                            json_object_closed, parse_model_output)

DEFAULT_MAX_NEW_TOKENS = 320  # params.yaml infer.max_new_tokens (tests/test_cli.py keeps them equal)
DEFAULT_BATCH_SIZE = 8        # params.yaml infer.batch_size
DEFAULT_CONSTRAINED = True    # params.yaml infer.constrained: schema-constrained decoding (local backend)


@dataclass
class Prediction:
    id: str
    raw_text: str | None = None
    parse: ParseResult | None = None
    latency_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None          # the frame could not be processed at all (bad image, server error)
    extra: dict = field(default_factory=dict)

    def record(self, model: str) -> dict:
        ok = self.parse is not None and self.parse.ok
        return {"id": self.id, "model": model, "prompt_hash": PROMPT_HASH, "raw_text": self.raw_text,
                "analysis": self.parse.analysis.model_dump(mode="json") if ok else None,
                "json_found": bool(self.parse and self.parse.json_found),
                "schema_valid": bool(self.parse and self.parse.schema_valid),  # as written, nothing repaired
                "errors": ([self.error] if self.error else []) + (self.parse.errors if self.parse else []),
                "warnings": self.parse.warnings if self.parse else [], "latency_s": round(self.latency_s, 4),
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "failed": self.error is not None,  # not processed at all: retried on resume, never counted done
                **self.extra}


class Backend(Protocol):
    name: str

    def analyze(self, images: list[tuple[str, str | Path | bytes]]) -> list[Prediction]: ...


def _load_all(images) -> tuple[list[tuple[str, Image.Image]], list[Prediction]]:
    good, failed = [], []
    for image_id, source in images:
        try:
            good.append((image_id, open_image(source)))
        except ValueError as exc:  # open_image names the file and the problem
            failed.append(Prediction(image_id, error=str(exc)))
    return good, failed


class LocalBackend:
    """Qwen3-VL through transformers on CPU or GPU."""

    def __init__(self, model, processor, name: str = "local", batch_size: int = DEFAULT_BATCH_SIZE,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, do_sample: bool = False, temperature: float = 1.0,
                 constrained: bool = DEFAULT_CONSTRAINED, view=None):
        from chimera.vlm.views import load_view

        self.model, self.processor, self.name = model, processor, name
        self.view = view if view is not None else load_view(getattr(model, "name_or_path", None))
        self.batch_size, self.do_sample, self.temperature = batch_size, do_sample, temperature
        self.constrained = constrained
        # a constrained answer always fits decoding_token_bound(): never cut it (chimera/vlm/constrained.py)
        self.max_new_tokens = max(max_new_tokens, decoding_token_bound()) if constrained else max_new_tokens

    @property
    def settings(self) -> dict:
        """Everything besides the weights and the prompt that changes an answer (resume keys on it)."""
        size = getattr(getattr(self.processor, "image_processor", None), "size", None) or {}
        return {"max_new_tokens": self.max_new_tokens, "batch_size": self.batch_size, "do_sample": self.do_sample,
                "temperature": self.temperature if self.do_sample else None, "pixels": dict(size),
                "constrained": self.constrained, "view": self.view.to_json(),
                "dtype": str(getattr(self.model, "dtype", "")),
                "quantization": getattr(getattr(self.model, "config", None), "quantization_config", None) is not None}

    def _stopper(self, prompt_len: int):
        import torch
        from transformers import StoppingCriteria

        tokenizer = self.processor.tokenizer

        class StopAtJsonEnd(StoppingCriteria):
            """A row's object can only close on a step whose new token holds a "}" (an ASCII byte: it decodes alone
            as in context), so only those rows are decoded whole. Decoding every row at every step cost a quarter
            of generation time on the tiny model."""

            def __call__(self, input_ids, scores, **kwargs):
                last = tokenizer.batch_decode([[token] for token in input_ids[:, -1].tolist()])
                done = [("}" in piece) and json_object_closed(
                    tokenizer.decode(input_ids[row, prompt_len:].tolist(), skip_special_tokens=True))
                        for row, piece in enumerate(last)]
                return torch.tensor(done, device=input_ids.device)

        return StopAtJsonEnd()

    def constraint(self, batch_size: int, prompt_len: int) -> dict:
        """generate() keyword arguments that keep every row inside the decoding schema (llguidance)."""
        from chimera.vlm.constrained import SchemaLogitsProcessor

        return {"logits_processor": [SchemaLogitsProcessor(self.processor.tokenizer, batch_size, prompt_len)]}

    def generate(self, messages_batch: list[list[dict]]) -> list[tuple[str, int, int]]:
        """Raw generation for prepared chat messages: (text, input tokens, output tokens) per item."""
        import torch

        inputs = self.processor.apply_chat_template(
            messages_batch, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
            processor_kwargs={"padding": True, "padding_side": "left"}).to(self.model.device)
        prompt_len = inputs["input_ids"].shape[1]
        kwargs = dict(max_new_tokens=self.max_new_tokens, do_sample=self.do_sample,
                      stopping_criteria=[self._stopper(prompt_len)],
                      pad_token_id=self.processor.tokenizer.pad_token_id)
        if self.do_sample:
            kwargs["temperature"] = self.temperature
        if self.constrained:
            kwargs.update(self.constraint(len(messages_batch), prompt_len))
        with torch.inference_mode():
            out = self.model.generate(**inputs, **kwargs)
        new = out[:, prompt_len:]
        texts = self.processor.batch_decode(new, skip_special_tokens=True)
        pad = self.processor.tokenizer.pad_token_id
        n_in = inputs["attention_mask"].sum(dim=1).tolist()
        n_out = (new != pad).sum(dim=1).tolist()
        return list(zip(texts, n_in, n_out))

    def analyze(self, images, progress=None) -> list[Prediction]:
        loaded, failed = _load_all(images)
        # sort by pixel count: batches of similar sizes waste little on padding
        loaded.sort(key=lambda item: item[1].width * item[1].height)
        results = {p.id: p for p in failed}
        for start in range(0, len(loaded), self.batch_size):
            chunk = loaded[start:start + self.batch_size]
            t0 = time.perf_counter()
            outputs = self.generate([chat_messages(self.view.images(image)) for _, image in chunk])
            per_item = (time.perf_counter() - t0) / len(chunk)
            for (image_id, _), (text, n_in, n_out) in zip(chunk, outputs):
                results[image_id] = Prediction(image_id, text, parse_model_output(text), per_item, n_in, n_out)
            if progress:
                progress(len(chunk))
        return [results[image_id] for image_id, _ in images]


def _data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class OpenAICompatBackend:
    """A chat-completions endpoint (vLLM / SGLang serving Qwen3-VL)."""

    RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}  # what the Anthropic and OpenAI SDKs retry

    def __init__(self, base_url: str, model: str, api_key: str = "EMPTY", concurrency: int = 8,
                 guided_json: bool = True, max_tokens: int = 1024, timeout_s: float = 120.0, http_client=None,
                 max_retries: int = 4, backoff_s: float = 0.5, max_backoff_s: float = 30.0, sleep=time.sleep):
        import httpx

        self.name, self.model, self.concurrency = f"openai:{model}", model, concurrency
        self.guided_json, self.max_tokens = guided_json, max_tokens
        self.max_retries, self.backoff_s, self.max_backoff_s, self.sleep = max_retries, backoff_s, max_backoff_s, sleep
        self.client = http_client or httpx.Client(timeout=timeout_s)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {api_key}"}

    def request_body(self, image: Image.Image) -> dict:
        body = {"model": self.model, "temperature": 0, "max_tokens": self.max_tokens,
                "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                             {"role": "user", "content": [{"type": "image_url", "image_url": {"url": _data_url(image)}},
                                                          {"type": "text", "text": USER_PROMPT}]}]}
        if self.guided_json:  # vLLM's guided decoding takes the local backend's decoding schema (less llguidance's hint)
            schema = {k: v for k, v in decoding_json_schema().items() if k != "x-guidance"}
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "analysis", "schema": schema}}
        return body

    def _one(self, image_id: str, image: Image.Image) -> Prediction:
        import httpx

        t0 = time.perf_counter()
        body = self.request_body(image)
        try:
            response = self._post_with_retries(body)
            response.raise_for_status()
            payload = response.json()
            text = payload["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            return Prediction(image_id, error=f"server error: {type(exc).__name__}: {exc}",
                              latency_s=time.perf_counter() - t0)
        usage = payload.get("usage") or {}
        return Prediction(image_id, text, parse_model_output(text), time.perf_counter() - t0,
                          usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))

    def _post_with_retries(self, body: dict):
        """POST, retrying timeouts, connection errors and 408/409/429/5xx with exponential backoff (jittered),
        honouring the server's `retry-after` seconds. The last answer (or error) is returned (raised)."""
        import random

        import httpx

        for attempt in range(self.max_retries + 1):
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * (0.75 + 0.5 * random.random())
            try:
                response = self.client.post(self.url, json=body, headers=self.headers)
            except (httpx.TimeoutException, httpx.TransportError):
                if attempt == self.max_retries:
                    raise
            else:
                if response.status_code not in self.RETRY_STATUS or attempt == self.max_retries:
                    return response
                after = response.headers.get("retry-after", "")
                if after.replace(".", "", 1).isdigit():
                    delay = min(self.max_backoff_s, float(after))
            self.sleep(delay)
        raise AssertionError("unreachable")

    def analyze(self, images, progress=None) -> list[Prediction]:
        loaded, failed = _load_all(images)
        results = {p.id: p for p in failed}
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for prediction in pool.map(lambda item: self._one(*item), loaded):
                results[prediction.id] = prediction
                if progress:
                    progress(1)
        return [results[image_id] for image_id, _ in images]


class ClaudeBackend:
    """Claude as a model under evaluation, through the labeler's client. Give it a labeler without a cache
    (`ClaudeLabeler(config, cache_dir=None)`): scored from the labeling cache, Claude would be graded on its own
    labels."""

    def __init__(self, labeler):
        if labeler.cache_dir is not None:
            raise ValueError("ClaudeBackend needs a labeler without a cache (cache_dir=None): a model under "
                             "evaluation must not be served its own stored labels")
        self.labeler, self.name = labeler, f"claude:{labeler.config.model}"

    def analyze(self, images, progress=None) -> list[Prediction]:
        out = []
        for image_id, source in images:
            t0 = time.perf_counter()
            try:
                data = source if isinstance(source, bytes) else Path(source).read_bytes()
                open_image(data)
                record = self.labeler.label_one(image_id, data)
            except Exception as exc:  # noqa: BLE001 - one bad frame or answer fails that frame, the batch goes on
                out.append(Prediction(image_id, error=f"{type(exc).__name__}: {exc}"))
                continue
            import json

            text = json.dumps(record["analysis"]) if record["analysis"] else ""
            out.append(Prediction(image_id, text, parse_model_output(text), time.perf_counter() - t0,
                                  record["usage"]["input_tokens"], record["usage"]["output_tokens"]))
            if progress:
                progress(1)
        return out
