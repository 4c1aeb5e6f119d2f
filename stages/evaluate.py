"""Stage evaluate: one model's (or baseline's) predictions vs labels -> metrics/eval/<name>.json, plots/eval/<name>/.

    python stages/evaluate.py A_zeroshot             # stage evaluate@A_zeroshot
    python stages/evaluate.py sft/perception-100-0   # stage evaluate_sft@100-perception-0 (a cell of the SFT grid)
"""

from _common import log, params

import sys
from pathlib import Path

import joblib
import pandas as pd

from chimera.demos.winprob import p_side_wins_many
from chimera.evaluation.metrics import evaluate, frame_rows
from chimera.evaluation.plots import write_plots
from chimera.io import read_parquet, write_csv, write_json
from chimera.records import load_records
from chimera.schema import GameState

name = sys.argv[1]
p = params("evaluate")
splits = read_parquet("data/labeled/splits.parquet")
frames = splits[splits.split == params("infer")["split"]]
labels = {i: r for i, r in load_records("data/labeled/labels").items() if i in set(frames.id)}
predictions = load_records(f"data/predictions/{name}")
info = {r.id: {"source": r.source, "height": int(r.height)} for r in frames.itertuples()}
winprob = joblib.load("models/winprob_screen.joblib")  # a screenshot is the input: the screenshot view
sided = [i for i, r in labels.items() if r["analysis"]["game_state"].get("player_side") in ("CT", "T")]
p_wins = dict(zip(sided, p_side_wins_many(winprob, [GameState.model_validate(labels[i]["analysis"]["game_state"])
                                                    for i in sided])))
summary, scores = evaluate(predictions, labels, p["tolerances"], info, p_wins, params()["seed"])
summary["model"] = name
free = Path(f"data/predictions/{name}/unconstrained")
if free.is_dir():  # the same model decoded without the schema constraint (stages/infer.py)
    free_predictions = load_records(free)  # the first infer.unconstrained_frames frames: scored on those alone
    free_summary, _ = evaluate(free_predictions, {i: r for i, r in labels.items() if i in free_predictions},
                               p["tolerances"], info, p_wins, params()["seed"])
    summary["unconstrained"] = {k: free_summary[k] for k in ("n_frames", "schema_compliance", "json_validity",
                                                             "value_accuracy") if k in free_summary}
summary["llm_judge"] = {"skipped": "offline by default: set evaluate.llm_judge: true with ANTHROPIC_API_KEY"}
if p.get("llm_judge"):
    from chimera.evaluation.judge import judge_predictions

    summary["llm_judge"] = judge_predictions(predictions, labels)
write_json(f"metrics/eval/{name}.json", summary)
write_plots(summary, scores, Path("plots/eval") / name, name)
write_csv(f"plots/eval/{name}/frames.csv", pd.DataFrame(frame_rows(scores)))  # per frame, for paired comparisons
log("evaluate").info("%s: schema compliance %.2f, value accuracy %.2f (n=%d)", name,
                     summary["schema_compliance"]["value"], summary["value_accuracy"]["value"], summary["n_frames"])
