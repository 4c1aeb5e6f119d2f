"""Benchmark: `chimera serve` on loopback: p50/p95 latency and throughput for 1, 4 and 16 concurrent clients, with
batching (batch 4, 20 ms wait) and without (batch 1); lost or duplicated answers counted; malformed uploads
(truncated PNG, zero bytes, 50 MB, a text file, a decompression bomb) each answered with their 4xx while the server
keeps serving.

    python bench/bench_serve.py --model models/perception --requests 32

The model answers as the pipeline does (schema-constrained decoding). Run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from PIL import Image  # noqa: E402

from chimera.io import sha256_bytes  # noqa: E402
from chimera.screens.hud import Style, png_bytes, render_frame, sample_state  # noqa: E402
from chimera.serve import ServeConfig, ServerThread, create_app  # noqa: E402
from chimera.vlm.backends import LocalBackend  # noqa: E402
from chimera.vlm.models import ModelConfig, load_model  # noqa: E402


def frames(n: int) -> list[bytes]:
    out = []
    for seed in range(n):
        state, extras = sample_state(random.Random(1000 + seed))
        out.append(png_bytes(render_frame(state, extras, Style(width=640, height=360, seed=seed))[0]))
    return out


def post(url: str, data: bytes, name="shot.png", ctype="image/png"):
    t0 = time.perf_counter()
    r = httpx.post(f"{url}/v1/analyze", files={"image": (name, data, ctype)}, timeout=600)
    return r, time.perf_counter() - t0


def load(url: str, images: list[bytes], clients: int) -> dict:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda d: post(url, d), images))
    wall = time.perf_counter() - t0
    ok = [(r, s) for r, s in results if r.status_code == 200]
    lat = sorted(s for _, s in ok)
    ids = [r.json()["id"] for r, _ in ok]
    expected = [sha256_bytes(d) for d, (r, _) in zip(images, results) if r.status_code == 200]
    return {"clients": clients, "requests": len(images), "ok": len(ok),
            "lost": len(images) - len(ok), "wrong_or_duplicated": sum(a != b for a, b in zip(ids, expected)),
            "p50_s": round(statistics.median(lat), 3), "p95_s": round(lat[max(0, int(0.95 * len(lat)) - 1)], 3),
            "throughput_per_s": round(len(ok) / wall, 2)}


def malformed(url: str, good: bytes) -> list[dict]:
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")
    cases = [("truncated PNG", good[:400], "image/png"), ("zero bytes", b"", "image/png"),
             ("50 MB", b"\x89PNG\r\n\x1a\n" + b"\0" * (50 * 2**20), "image/png"),
             ("text file", b"hello, not an image", "text/plain"), ("decompression bomb", bomb.getvalue(), "image/png")]
    out = []
    for name, data, ctype in cases:
        r, s = post(url, data, "upload", ctype)
        after, _ = post(url, good)
        out.append({"case": name, "status": r.status_code, "detail": r.json().get("detail"), "seconds": round(s, 3),
                    "served_after": after.status_code == 200})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/perception")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--clients", default="1,4,16")
    args = ap.parse_args()
    model, processor = load_model(ModelConfig(name=args.model))
    images = frames(args.requests)
    report = {"model": args.model, "runs": []}
    for batch in (1, 4):
        backend = LocalBackend(model, processor, args.model, batch_size=batch)
        app = create_app(backend, ServeConfig(batch_size=batch, max_wait_ms=20, queue_size=64,
                                              max_upload_bytes=20 * 2**20))
        with ServerThread(app) as server:
            post(server.url, images[0])  # warm-up
            for clients in (int(c) for c in args.clients.split(",")):
                row = {"batch_size": batch, **load(server.url, images, clients)}
                batches = app.state.chimera["batches"]
                row["mean_batch"] = round(statistics.mean(batches[-row["ok"]:]) if batches else 0, 2)
                report["runs"].append(row)
                print(json.dumps(row), flush=True)
            if batch == 4:
                report["malformed"] = malformed(server.url, images[0])
    print(json.dumps(report["malformed"], indent=1))
    print("\n| batching | clients | requests | ok | lost | wrong/dup | p50 s | p95 s | answers/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in report["runs"]:
        print(f"| {'batch 4, 20 ms' if r['batch_size'] == 4 else 'off (batch 1)'} | {r['clients']} | {r['requests']} | "
              f"{r['ok']} | {r['lost']} | {r['wrong_or_duplicated']} | {r['p50_s']} | {r['p95_s']} | "
              f"{r['throughput_per_s']} |")


if __name__ == "__main__":
    main()
