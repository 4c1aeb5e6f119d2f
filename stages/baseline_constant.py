"""Stage baseline_constant: one answer (the training labels' per-field modes) for every evaluation frame."""

from _common import log, params

from chimera.evaluation.baselines import constant_analysis, constant_record
from chimera.io import read_parquet
from chimera.records import load_records, write_records

splits = read_parquet("data/labeled/splits.parquet")
labels = load_records("data/labeled/labels")
train = [labels[i]["analysis"] for i in splits[splits.split == "train"].id]
answer = constant_analysis(train)
frames = splits[splits.split == params("infer")["split"]]
write_records("data/predictions/constant", [constant_record(i, answer) for i in frames.id])
log("baseline_constant").info("constant answer for %d frames: %s", len(frames), answer["game_state"])
