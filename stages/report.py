"""Stage report: baselines and models side by side, margins over the constant, paired differences with CIs."""

from _common import log, params

import pandas as pd

from chimera.evaluation.baselines import BASELINES
from chimera.evaluation.plots import comparison_plot
from chimera.evaluation.report import build_report, markdown
from chimera.io import atomic_write_text, read_json, write_json

rows = [*BASELINES, *params("infer")["models"]]
summaries = {m: read_json(f"metrics/eval/{m}.json") for m in rows}
frames = {m: pd.read_csv(f"plots/eval/{m}/frames.csv").set_index("id") for m in rows}
# losses only: timings and memory vary run to run and would make every `dvc metrics diff` show noise
LOSSES = ("steps", "first_loss", "final_loss", "first_val_loss", "final_val_loss", "best_val_loss")
training = {m: {k: v for k, v in read_json(f"metrics/train/{m}.json").items() if k in LOSSES}
            for m in rows if m in params("sft")["runs"] or m == "E_grpo"}
report = build_report(summaries, frames, params("report")["comparisons"], training, params()["seed"], BASELINES)
perception = read_json("metrics/perception.json")  # the base's reading, without its curve (dvclive has it)
report["perception"] = {k: v for k, v in perception.items() if k not in ("curve", "render_seconds", "train_seconds")}
report["perception"]["n_held_out"] = params("perception")["n_val"]
write_json("metrics/report.json", report)
atomic_write_text("metrics/report.md", markdown(report))
comparison_plot(report, "plots/comparison.png")
log("report").info("%s", report["models_not_beating_constant"] and
                   f"not beating the constant: {report['models_not_beating_constant']}" or "every model beats the constant")
for row in report["comparisons"]:
    d = row["value_accuracy"]
    if d["delta"] is not None:
        log("report").info("%s vs %s: value accuracy %+.3f [%+.3f, %+.3f] -> %s", row["model"], row["baseline"],
                           d["delta"], d["ci95"][0], d["ci95"][1], d["verdict"])
