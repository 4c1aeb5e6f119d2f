"""The perception stage's run (params.yaml, as stages/pretrain_perception.py builds it) at other seeds: how far apart
runs of one setting end. The seed draws the pool's frames, the initial weights and the data order.

    python bench/perception_seeds.py 1 2                                          # the default at seeds 1 and 2
    python bench/perception_seeds.py 0 1 --set '{"value_weights": {"player_health": 5, "player_armor": 5}}'

Each run takes as long as the stage (about 10 minutes on 2 cores); prints the stage's last curve point per seed.
Needs models/tiny-qwen3vl (dvc repro build_tiny_model).
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.io import load_params  # noqa: E402
from chimera.training.perception import stage_config, train  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("seeds", type=int, nargs="+")
parser.add_argument("--set", default="{}", help="JSON of perception fields to override, e.g. value_weights")
args = parser.parse_args()

params = load_params("params.yaml")
shown = ["player_money", "player_health", "player_armor", "player_side", "alive_teammates", "round_phase"]
for seed in args.seeds:
    with tempfile.TemporaryDirectory() as out:
        cfg = stage_config(params["perception"], params["model"]["tiny_path"], seed, params["synthetic"]["backgrounds"],
                           params["screens"]["shared_screenshots"], output_dir=out, **json.loads(args.set))
        summary = train(cfg, progress=lambda message: print(message, flush=True))
    held = summary["held_out"]
    print(f"seed {seed}: held-out value accuracy {held['value_accuracy']:.1%}, "
          f"schema-valid {held['schema_valid']:.0%}; "
          + ", ".join(f"{name} {held['fields'].get(name, 0):.0%}" for name in shown)
          + f"; curve {[round(p['held_out']['value_accuracy'], 3) for p in summary['curve']]}; "
          f"{summary['train_seconds']:.0f} s", flush=True)
