"""Stage report: baselines and models side by side, margins over the constant, paired differences with CIs."""

from _common import log, params

import json

import numpy as np
import pandas as pd

from chimera.evaluation.baselines import BASELINES, constant_game_state
from chimera.evaluation.metrics import DEFAULT_TOLERANCES, frame_value_accuracy, score_frame
from chimera.screens.hud import sample_state
from chimera.training.perception import pool_rng
from chimera.evaluation.plots import comparison_plot
from chimera.evaluation.report import build_report, markdown, research_answers
from chimera.io import atomic_write_text, read_json, write_json



def constant_reading(seed: int, n_frames: int, n_held_out: int) -> float:
    """Value accuracy of the constant answer (per-field mode of the perception pool's labels) on the base's held-out
    frames. Labels are the sampled states alone: the pool's frame i is drawn from pool_rng(seed, i) state first."""
    state = lambda i: sample_state(pool_rng(seed, i))[0].model_dump(mode="json")  # noqa: E731
    modes = constant_game_state([state(i) for i in range(n_frames)])
    scores = [score_frame(str(i), {"analysis": None, "raw_text": '{"game_state":' + json.dumps(modes) + "}"},
                          {"analysis": {"game_state": state(i)}}, DEFAULT_TOLERANCES)
              for i in range(n_frames, n_frames + n_held_out)]
    return float(np.nanmean([frame_value_accuracy(s) for s in scores]))


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
if not perception.get("skipped"):  # its trivial baseline on the same held-out frames: the pool labels' constant
    report["perception"]["constant"] = constant_reading(params()["seed"], perception["frames"], perception["n_held_out"])
report["research"] = research_answers(frames, params("report")["noninferiority_margin"], params()["seed"])
report["winprob"] = read_json("metrics/winprob.json")
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
