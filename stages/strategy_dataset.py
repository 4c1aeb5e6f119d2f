"""Stage strategy_dataset: snapshots + win probability -> text SFT examples split by match; XvX metric."""

from _common import log, params

from chimera.demos.strategy_dataset import build_examples, check_balance, split_by_match, xvx_table
from chimera.io import read_parquet, write_json, write_parquet

p = params("strategy")
snaps = read_parquet("data/processed/snapshots_winprob.parquet")
examples = build_examples(snaps)
train, val, balance = split_by_match(examples, p["val_fraction"], params()["seed"])
problems = check_balance(balance, p["balance_limits"])
if set(train.match_id) & set(val.match_id):
    raise SystemExit("strategy_dataset: a match is in both train and val")
write_parquet("data/processed/strategy/train.parquet", train)
write_parquet("data/processed/strategy/val.parquet", val)
xvx = xvx_table(read_parquet("data/processed/xvx_states.parquet"))
write_json("metrics/strategy_dataset.json", {
    "train_examples": len(train), "val_examples": len(val), "train_matches": int(train.match_id.nunique()),
    "val_matches": int(val.match_id.nunique()), "balance_total_variation": balance,
    "xvx": {row["state"]: row for row in xvx}})
if problems:
    raise SystemExit("strategy_dataset: split badly skewed: " + "; ".join(problems))
log("strategy_dataset").info("%d train / %d val examples; balance %s", len(train), len(val), balance)
