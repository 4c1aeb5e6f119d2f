"""Stage report: every model's metrics side by side, paired differences with CIs, one figure, one table."""

from _common import log, params

from pathlib import Path

import pandas as pd

from chimera.evaluation.plots import comparison_plot
from chimera.evaluation.report import build_report, markdown
from chimera.io import atomic_write_text, read_json, write_json

models = list(params("infer")["models"])
summaries = {m: read_json(f"metrics/{m}.json") for m in models}
frames = {m: pd.read_csv(f"plots/{m}/frames.csv").set_index("id") for m in models}
training = {m: read_json(f"metrics/train_{m}.json") for m in models if Path(f"metrics/train_{m}.json").exists()}
report = build_report(summaries, frames, params("report")["comparisons"], training, params()["seed"])
write_json("metrics/report.json", report)
atomic_write_text("metrics/report.md", markdown(report))
comparison_plot(report, "plots/comparison.png")
for row in report["comparisons"]:
    d = row["value_accuracy"]
    if d["delta"] is not None:
        log("report").info("%s vs %s: game_state accuracy %+.3f [%+.3f, %+.3f] -> %s", row["model"], row["baseline"],
                           d["delta"], d["ci95"][0], d["ci95"][1], d["verdict"])
