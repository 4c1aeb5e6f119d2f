"""Reading phases alone: the stage's own trainer and setting (params.yaml, chimera.training.perception.stage_config)
run with the given `reading` phases and a one-step full task, to see what each phase reads on held-out crops before
paying for the full task. The view is params.yaml's `perception.view`.

    python bench/explore_reading.py '[{"steps": 1500, "tasks": {"money": ["player_money"]}}]' [n_frames] [n_val]

Prints each phase's held-out reading (the stage's own line), each field beside the share of held-out frames at its
most common value, the prior a reading has to beat. Needs models/tiny-qwen3vl (dvc repro build_tiny_model).
"""
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.io import load_params  # noqa: E402
from chimera.training.perception import stage_config, train  # noqa: E402

phases = json.loads(sys.argv[1])
n_frames = int(sys.argv[2]) if len(sys.argv) > 2 else 2400
n_val = int(sys.argv[3]) if len(sys.argv) > 3 else 96
params = load_params("params.yaml")
with tempfile.TemporaryDirectory() as out:  # the stage's setting, with these phases and a one-step full task
    cfg = stage_config(params["perception"], params["model"]["tiny_path"], params["seed"],
                       params["synthetic"]["backgrounds"], params["screens"]["shared_screenshots"], output_dir=out,
                       n_frames=n_frames, n_val=n_val, max_steps=1, eval_every=10**9, reading=phases,
                       max_new_tokens=40)
    summary = train(cfg, progress=lambda message: print(message, flush=True))  # each phase's end: its prior beside
    print(json.dumps(summary["reading_phases"]))
