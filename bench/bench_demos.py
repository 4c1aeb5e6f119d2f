"""Benchmark: parse + snapshot throughput and peak memory on the shipped demos (CPU).

    python bench/bench_demos.py [--shared ../shared] [--sample-every-s 20]

Runs the library functions the parse_demos and snapshots stages call, in one process, and prints one
table: seconds per source, snapshots per second, and the process's peak RSS (what a machine must have).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chimera.demos.awpy_adapter import load_dem  # noqa: E402
from chimera.demos.canonical import DemoError  # noqa: E402
from chimera.demos.cs2df import load_cs2df  # noqa: E402
from chimera.demos.snapshots import build_snapshots  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parent.parent.parent / "shared"))
    ap.add_argument("--sample-every-s", type=float, default=20.0)
    args = ap.parse_args()
    data = Path(args.shared) / "data"
    zips = sorted((data / "cs2-parsed-matches").glob("*.zip"))
    dems = sorted((data / "cs2-demos").glob("*.dem"))

    start_rss = peak_rss_mb()
    t0 = time.perf_counter()
    matches, failed = [], 0
    for path in zips + dems:
        try:
            matches.append(load_cs2df(path) if path.suffix == ".zip" else load_dem(path, 8))
        except DemoError:
            failed += 1
    parse_s = time.perf_counter() - t0
    parse_rss = peak_rss_mb()

    t1 = time.perf_counter()
    rows = sum(len(build_snapshots(m, args.sample_every_s)) for m in matches if len(m.rounds))
    snap_s = time.perf_counter() - t1
    rounds = sum(len(m.rounds) for m in matches)
    frame_rows = sum(len(m.frames) for m in matches)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "sources": len(zips) + len(dems), "failed_cleanly": failed, "rounds": rounds, "frame_rows": frame_rows,
        "parse_s": round(parse_s, 2), "parse_s_per_source": round(parse_s / max(1, len(zips) + len(dems)), 3),
        "parse_frame_rows_per_s": round(frame_rows / parse_s),
        "snapshots": rows, "snapshot_s": round(snap_s, 2), "snapshots_per_s": round(rows / snap_s, 1),
        "peak_rss_mb_start": round(start_rss), "peak_rss_mb_after_parse": round(parse_rss),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    print(json.dumps(result, indent=2))
    print(f"\n| sources | rounds | parse s | snapshots | snapshots/s | peak RSS MB |\n|---|---|---|---|---|---|\n"
          f"| {result['sources']} ({failed} fail cleanly) | {rounds} | {result['parse_s']} | {rows} | "
          f"{result['snapshots_per_s']} | {result['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
