"""Stage report: baselines and models side by side, margins over the constant, the research grid's answers with
intervals over seeds and frames, the data-efficiency plot, and what made it (model, data, hardware, revision)."""

from _common import log, params

import json
import os
import platform

import numpy as np
import pandas as pd
import torch

from chimera.evaluation.baselines import BASELINES, constant_game_state
from chimera.evaluation.metrics import DEFAULT_TOLERANCES, frame_value_accuracy, score_frame
from chimera.evaluation.plots import comparison_plot, data_efficiency_plot
from chimera.evaluation.report import (build_report, e_against_sft, grid_summary, labels_saved, markdown,
                                       per_field_deltas, research_answers, slices)
from chimera.grid import ARM_LABELS, grid_cells, grpo_cells, grpo_label, named_cells
from chimera.io import atomic_write_text, git_revision, read_json, write_json
from chimera.screens.hud import sample_state
from chimera.training.perception import pool_rng
from chimera.vlm.models import TINY


def constant_reading(seed: int, n_frames: int, n_held_out: int) -> float:
    """Value accuracy of the constant answer (per-field mode of the perception pool's labels) on the base's held-out
    frames. Labels are the sampled states alone: the pool's frame i is drawn from pool_rng(seed, i) state first."""
    state = lambda i: sample_state(pool_rng(seed, i))[0].model_dump(mode="json")  # noqa: E731
    modes = constant_game_state([state(i) for i in range(n_frames)])
    scores = [score_frame(str(i), {"analysis": None, "raw_text": '{"game_state":' + json.dumps(modes) + "}"},
                          {"analysis": {"game_state": state(i)}}, DEFAULT_TOLERANCES)
              for i in range(n_frames, n_frames + n_held_out)]
    return float(np.nanmean([frame_value_accuracy(s) for s in scores]))


seed, sweep, sft, grpo = params()["seed"], params("sweep"), params("sft"), params("grpo")
cells = grid_cells(sweep)
named = named_cells(sweep)
e_cells = grpo_cells({"arms": grpo["arms"], "shots": grpo["shots"], "seeds": grpo["seeds"]})
rows = [*BASELINES, *params("infer")["models"], *cells, *e_cells]
summaries = {m: read_json(f"metrics/eval/{m}.json") for m in rows}
frames = {m: pd.read_csv(f"plots/eval/{m}/frames.csv").set_index("id") for m in rows}
# losses only: timings and memory vary run to run and would make every `dvc metrics diff` show noise
LOSSES = ("steps", "first_loss", "final_loss", "first_val_loss", "final_val_loss", "best_val_loss")
training = {m: {k: v for k, v in read_json(f"metrics/train/{m}.json").items() if k in LOSSES}
            for m in rows if m in cells or m in e_cells}
report = build_report(summaries, frames, params("report")["comparisons"], training, seed, BASELINES)
report["hybrid_with"] = params("report")["hybrid_with"]
steps = (f"equal epochs: every run takes {sweep['epochs']} passes over its shots at batch {sft['batch_size']}"
         if sweep["equal"] == "epochs" else f"equal steps: every run takes {sweep['steps']} optimizer steps")
pre = params("pretrain_strategy")
steps += (f"; the strategy and control pretraining, at each seed, take {pre['max_steps']} steps at batch {pre['batch_size']} over "
          f"{pre['max_examples']} demo texts" + (
              f" and {pre['rehearsal_frames']} frames of the base's own training pool, its reading rehearsed (both arms)"
              if pre["rehearsal_frames"] and params("model")["name"] == TINY else ""))
report["research"] = research_answers(frames, named, params("report")["noninferiority_margin"], seed, steps)
report["grid"] = {"seeds": list(sweep["seeds"]), "shots": list(sweep["shots"]), "arms": list(sweep["arms"]),
                  "arm_labels": {arm: ARM_LABELS.get(arm, arm) for arm in sweep["arms"]},
                  "steps": steps, "named_cells": named, "summary": grid_summary(frames, cells, seed),
                  "labels_saved": (labels_saved(frames, cells, named["B"], sweep["named"]["C"]["arm"], seed=seed)
                                   if "B" in named and "C" in sweep["named"] else {}),
                  "per_field": per_field_deltas(frames, named, seed=seed), "slices": slices(frames, named, seed),
                  "pretraining": {arm: [read_json(f"metrics/arms/{arm}-{s}.json")["final_val_loss"] for s in sweep["seeds"]]
                                  for arm in sweep["arms"]}}
e_train = {key: read_json(f"metrics/train/{key}.json") for key in e_cells}
report["grpo"] = {key: {"label": grpo_label(cell, sweep), "from": cell["sft"], "seed": cell["seed"],
                        "rewards": e_train[key]["reward_windows"], "per_step": e_train[key]["reward_per_step"],
                        "paired": e_train[key].get("reward_paired")}
                  for key, cell in e_cells.items()}
report["e_vs_sft"] = e_against_sft(frames, e_cells, {key: e["label"] for key, e in report["grpo"].items()}, seed)
perception = read_json("metrics/perception.json")  # the base's reading, without its curve (dvclive has it)
report["perception"] = {k: v for k, v in perception.items() if k not in ("curve", "render_seconds", "train_seconds")}
if not perception.get("skipped"):  # its trivial baseline on the same held-out frames: the pool labels' constant
    report["perception"]["constant"] = constant_reading(seed, perception["frames"], perception["n_held_out"])
report["winprob"] = read_json("metrics/winprob.json")
sources = next(iter(frames.values()))["source"].value_counts()
report["provenance"] = {
    "model": params("model")["name"],
    "eval frames": f"{sources.sum()} ({', '.join(f'{n} {source}' for source, n in sources.items())})",
    "win-probability data": f"{report['winprob']['matches']} matches, {report['winprob']['snapshots']} snapshots",
    "hardware": f"{platform.machine()}, {os.cpu_count()} CPUs"
                + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"),
    "torch": torch.__version__, "git revision": git_revision()}
write_json("metrics/report.json", report)
atomic_write_text("metrics/report.md", markdown(report))
first = sweep["seeds"][0]
shown = {**{b: b for b in BASELINES}, **{m: m for m in params("infer")["models"]},
         **{keys[0]: f"{name} (seed {first})" for name, keys in named.items()},
         **{key: f"{e['label']} (seed {e['seed']})" for key, e in report["grpo"].items() if e["seed"] == grpo["seeds"][0]}}
comparison_plot(report, "plots/comparison.png", shown)
data_efficiency_plot(report, "plots/data_efficiency.png")
log("report").info("%s", report["models_not_beating_constant"] and
                   f"not beating the constant: {report['models_not_beating_constant']}" or "every model beats the constant")
for question, answer in report["research"].items():
    if isinstance(answer, dict) and answer.get("delta") is not None:
        log("report").info("%s: value accuracy %+.3f [%+.3f, %+.3f] -> %s", question, answer["delta"],
                           *answer["ci95"], answer.get("answer", answer["verdict"]))
