"""Reading phases alone: the stage's own trainer (chimera/training/perception.py) run with the given `reading` phases
and a one-step full task, to see what each phase reads on held-out crops before paying for the full task.

    python bench/explore_reading.py '[{"steps": 1500, "tasks": {"money": ["player_money"]}}]' [n_frames] [n_val]

Prints each phase's held-out reading (the stage's own line) and the held-out frames' most common value of each field
read, the prior a reading has to beat. Needs models/tiny-qwen3vl (dvc repro build_tiny_model).
"""
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.training.perception import PerceptionConfig, render_pool, train  # noqa: E402

phases = json.loads(sys.argv[1])
n_frames = int(sys.argv[2]) if len(sys.argv) > 2 else 2400
n_val = int(sys.argv[3]) if len(sys.argv) > 3 else 96
with tempfile.TemporaryDirectory() as out:
    cfg = PerceptionConfig(base_model="models/tiny-qwen3vl", output_dir=out, n_frames=n_frames, n_val=n_val,
                           max_steps=1, eval_every=10**9, learning_rate=5e-4, warmup_steps=300, reading=phases,
                           max_new_tokens=40, screenshots_dir="data/raw/screenshots",
                           backgrounds=["t2_chimera_gameplay_rifle.png", "t2_chimera_awp_holding.png",
                                        "neg_nohud_annotations_ancient2.jpg", "neg_nohud_annotations_inferno1.jpg",
                                        "t1_flxzz_dust2_knife_clean_hud.png"])
    held_out = [state for _, state in render_pool(cfg, n_frames, n_val)]
    fields = sorted({name for phase in phases for names in phase["tasks"].values() for name in names})
    print("held-out prior (share of the most common value): " + ", ".join(
        f"{name} {Counter(getattr(s, name) for s in held_out).most_common(1)[0][1] / n_val:.0%}" for name in fields),
        flush=True)
    summary = train(cfg, progress=lambda message: print(message, flush=True))
    print(json.dumps(summary["reading_phases"]))
