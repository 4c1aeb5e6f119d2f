"""Benchmark: the review page at scale in headless Chromium: time to interactive with 1,000 frames (file references,
served by http.server), the latency of a key press and of a filter, and the page's size per 100 frames with
images embedded.

    python bench/bench_review.py                 # needs `dvc repro` done (eval split, predictions) and Chromium

The 1,000 frames are the eval split's frames repeated under new ids, each with every model's prediction: the page
and its data are what 1,000 distinct frames would give (images are fetched per shown frame only).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chimera.evaluation.metrics import DEFAULT_TOLERANCES  # noqa: E402
from chimera.io import load_params, read_parquet  # noqa: E402
from chimera.records import load_records  # noqa: E402
from chimera.review.browser import chromium, serve  # noqa: E402
from chimera.review.page import write_review  # noqa: E402


def wait(driver, script, timeout=60):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.01)
    raise TimeoutError(script)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import os

    os.chdir(ROOT)
    models = load_params(ROOT / "params.yaml")["infer"]["models"]
    splits = read_parquet("data/labeled/splits.parquet")
    eval_frames = splits[splits.split == "eval"][["id", "path", "source"]].to_dict("records")
    labels = load_records("data/labeled/labels")
    preds = {m: load_records(f"data/predictions/{m}") for m in models}
    frames, big_labels, big_preds = [], {}, {m: {} for m in models}
    for k in range(args.frames):
        f = eval_frames[k % len(eval_frames)]
        fid = f"{f['id']}-{k}"
        frames.append({**f, "id": fid, "path": str(ROOT / f["path"])})
        big_labels[fid] = labels[f["id"]]
        for m in models:
            big_preds[m][fid] = preds[m][f["id"]]
    results = {"frames": args.frames, "models": len(models)}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        page = write_review(Path(tmp) / "reports" / "review.html", frames, big_labels, big_preds, DEFAULT_TOLERANCES)
        results["build_s"] = round(time.perf_counter() - t0, 2)
        results["page_mb"] = round(page.stat().st_size / 2**20, 2)
        for width in (320, 480):
            small = write_review(Path(tmp) / f"embed{width}.html", frames[:100], big_labels, big_preds,
                                 DEFAULT_TOLERANCES, embed=True, image_width=width)
            results[f"embed_{width}px_mb_per_100_frames"] = round(small.stat().st_size / 2**20, 2)
        # serve from / so the page's ../../work/... relative image paths resolve as on a repository checkout
        driver = chromium()
        try:
            with serve("/") as url:
                address = f"{url}{page.as_posix()}"
                tti, key_ms, filter_ms = [], [], []
                for _ in range(args.repeats):
                    driver.get("about:blank")
                    driver.get(address)
                    tti.append(int(wait(driver, "return document.body.dataset.readyMs")))
                    key_ms.append(driver.execute_script(
                        "var t=performance.now(); document.dispatchEvent(new KeyboardEvent('keydown',{key:'ArrowRight'}));"
                        "return performance.now()-t;"))
                    filter_ms.append(driver.execute_script(
                        "var b=document.getElementById('only-disagree'); var t=performance.now(); b.click();"
                        "return performance.now()-t;"))
                errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        finally:
            driver.quit()
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    results.update({"time_to_interactive_ms": med(tti), "tti_all_ms": tti, "arrow_key_ms": round(med(key_ms), 1),
                    "only_disagreements_filter_ms": round(med(filter_ms), 1), "console_errors": len(errors)})
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
