"""Where a `make repro` run's time went, and what a grid of another size would cost on the same machine.

Reads the log of a timed run whose every line starts with the wall-clock time (BENCHMARKS.md has the command):

    nohup setsid bash -c '(time make repro) 2>&1 | while IFS= read -r line; do
        printf "%s %s\\n" "$(date +%T)" "$line"; done' > repro.log 2>&1 < /dev/null &
    python bench/pipeline_split.py repro.log                      # the split by part and the cost of one grid cell
    python bench/pipeline_split.py repro.log --cells 100:3 20:1   # ...and a grid of 3 cells at 100 shots, 1 at 20

A stage's time runs from its "Running stage" line to the next one (the last to the end of the log), so DVC's own
work between stages (hashing, the lock file) counts with the stage before it. The cost model: a grid cell is its
SFT run, its decode and its evaluation, averaged per shot count over the cells of the run; everything else is a
fixed part (setup, data, win probability, strategy pretraining, baselines, report) or the perception stage or E.
"""

import argparse
import re
from collections import defaultdict
from datetime import datetime, timedelta

PARTS = [  # (part, stage-name pattern), first match wins
    ("perception pretraining", r"^pretrain_perception$"),
    ("each arm's pretraining at each seed (strategy, control; vision-only evaluates)", r"^pretrain@"),
    ("grid: SFT", r"^sft@"),
    ("grid: decode", r"^infer_sft@"),
    ("grid: evaluate", r"^evaluate_sft@"),
    ("E: GRPO, its decodes and evaluations", r"^(grpo@|infer_grpo@|evaluate_grpo@)"),
    ("A: decode and evaluate", r"^(infer|evaluate)@"),
    ("OCR baseline", r"^baseline_ocr$"),
    ("constant and hybrid baselines, their evaluations", r"^(baseline_(constant|hybrid)|evaluate_baseline@)"),
    ("report, review page, export", r"^(report|review|export)$"),
    ("render, demos, snapshots, win probability, labels, the tiny model", r"."),
]


def parse(lines: list[str]) -> tuple[timedelta, list[tuple[str, timedelta]]]:
    """(setup time, [(stage, time)]) from a log with `HH:MM:SS ` at the start of each line."""
    stamped = []
    for line in lines:
        for piece in line.split("\r"):  # progress bars rewrite a line with carriage returns
            m = re.match(r"^(\d\d:\d\d:\d\d) (.*)$", piece)
            if m:
                stamped.append((datetime.strptime(m.group(1), "%H:%M:%S"), m.group(2)))
    if not stamped:
        raise SystemExit("no time-stamped lines: run make repro as the module docstring says")

    def after(a, b):  # a run past midnight
        return b - a if b >= a else b - a + timedelta(days=1)

    starts = [(t, re.match(r"Running stage '([^']+)'", text).group(1)) for t, text in stamped
              if re.match(r"Running stage '([^']+)'", text)]
    if not starts:
        raise SystemExit("no 'Running stage' lines: was anything run?")
    end = stamped[-1][0]
    stages = [(name, after(t, starts[i + 1][0] if i + 1 < len(starts) else end)) for i, (t, name) in enumerate(starts)]
    return after(stamped[0][0], starts[0][0]), stages


def shots_of(stage: str) -> int | None:
    m = re.match(r"^(sft|infer_sft|evaluate_sft)@(\d+)-", stage)
    return int(m.group(2)) if m else None


def minutes(td: timedelta | float) -> str:
    s = round(td.total_seconds() if isinstance(td, timedelta) else td)
    return f"{s // 60} min {s % 60:02d} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log")
    parser.add_argument("--cells", nargs="*", default=[], metavar="SHOTS:N",
                        help="a grid to cost: N cells at SHOTS shots each (the rest of the run as it was)")
    args = parser.parse_args()
    with open(args.log, errors="replace") as f:
        setup, stages = parse(f.read().splitlines())
    parts = defaultdict(timedelta)
    parts["setup (venv, packages, data)"] = setup
    for name, took in stages:
        part = next(p for p, pattern in PARTS if re.search(pattern, name))
        parts[part] += took
    total = sum(parts.values(), timedelta())
    print(f"| part | time | share |\n|---|---|---|")
    for part, took in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"| {part} | {minutes(took)} | {took / total:.0%} |")
    print(f"| **total** | **{minutes(total)}** | |")

    per_shots = defaultdict(lambda: defaultdict(list))  # shots -> stage kind -> seconds
    for name, took in stages:
        if shots_of(name) is not None:
            per_shots[shots_of(name)][name.split("@")[0]].append(took.total_seconds())
    cell = {shots: sum(sum(v) / len(v) for v in kinds.values()) for shots, kinds in per_shots.items()}
    counts = {shots: len(kinds["sft"]) for shots, kinds in per_shots.items()}
    print("\nOne grid cell (its SFT run, decode and evaluation), mean over the run's cells:")
    for shots in sorted(cell):
        detail = ", ".join(f"{kind} {sum(v) / len(v):.0f} s" for kind, v in per_shots[shots].items())
        print(f"- {shots} shots: {cell[shots]:.0f} s ({detail}; {counts[shots]} cells)")
    grid = sum(cell[s] * counts[s] for s in cell)
    rest = total.total_seconds() - grid
    print(f"- the grid: {minutes(grid)}; everything else: {minutes(rest)}")
    if args.cells:
        wanted = {int(s): int(n) for s, n in (c.split(":") for c in args.cells)}
        missing = sorted(set(wanted) - set(cell))
        if missing:
            raise SystemExit(f"--cells: the run has no cells at {missing} shots to cost them from")
        cost = sum(cell[s] * n for s, n in wanted.items())
        print(f"\nA grid of {', '.join(f'{n} cells at {s} shots' for s, n in wanted.items())}: {minutes(cost)}; "
              f"with everything else as in this run: {minutes(rest + cost)}")


if __name__ == "__main__":
    main()
