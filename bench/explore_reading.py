"""Reading phases alone: the stage's own trainer and setting (params.yaml, chimera.training.perception.stage_config)
run with the given `reading` phases and a one-step full task, to see what each phase reads on held-out crops before
paying for the full task. The view is params.yaml's `perception.view`.

    python bench/explore_reading.py '[{"steps": 1500, "tasks": {"money": ["player_money"]}}]' [n_frames] [n_val]
    python bench/explore_reading.py '[{"steps": 1500, "tasks": {"inventory": ["weapon_primary"]}}]' \\
        --crop inventory=0.84,0.45,1.0,0.95:256x448     # one crop of the view replaced (box fractions, size)
    ... --vision-width 128                              # the vision blocks twice as wide, freshly initialised
    ... --patch-size 8                                  # the model's and the processor's patches

Prints each phase's held-out reading (the stage's own line), each field beside the share of held-out frames at its
most common value, the prior a reading has to beat. Needs models/tiny-qwen3vl (dvc repro build_tiny_model).
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.io import load_params  # noqa: E402
from chimera.training.perception import VIEWS, stage_config, train  # noqa: E402
from chimera.vlm.views import View  # noqa: E402


def resized_model(tiny_path: str, out: Path, vision_width: int | None, patch_size: int | None) -> str:
    """The tiny model with a wider vision tower or other patches, freshly initialised at seed 0 (its tokenizer and
    processor kept; as bench/perception_seeds.py --width does for the language model)."""
    from chimera.vlm.models import resized_tiny_model

    def change(config, processor):
        vision = config.vision_config
        if vision_width:  # heads of 32 dimensions, the MLP twice the width
            vision.hidden_size, vision.intermediate_size, vision.num_heads = vision_width, 2 * vision_width, vision_width // 32
        if patch_size:
            vision.patch_size = processor.image_processor.patch_size = patch_size

    folder, config, parameters = resized_tiny_model(tiny_path, out, change)
    vision = config.vision_config
    print(f"vision: {vision.depth} blocks of width {vision.hidden_size}, patches of {vision.patch_size}: "
          f"{parameters:,} parameters", flush=True)
    return str(folder)


def crop_override(spec: str) -> tuple[str, tuple]:
    """`name=x0,y0,x1,y1:WxH` -> (name, ((x0, y0, x1, y1), (W, H)))."""
    name, rest = spec.split("=")
    box, size = rest.split(":")
    return name, (tuple(float(v) for v in box.split(",")), tuple(int(v) for v in size.split("x")))


ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("phases", help="the reading phases, as params.yaml's perception.reading (JSON)")
ap.add_argument("n_frames", nargs="?", type=int, default=2400)
ap.add_argument("n_val", nargs="?", type=int, default=96)
ap.add_argument("--crop", action="append", default=[], help="name=x0,y0,x1,y1:WxH, a crop of the view replaced")
ap.add_argument("--vision-width", type=int, help="the vision blocks' width (64 in models/tiny-qwen3vl)")
ap.add_argument("--patch-size", type=int, help="the vision patches' side in pixels (16 in models/tiny-qwen3vl)")
args = ap.parse_args()
params = load_params("params.yaml")
view = VIEWS[params["perception"]["view"]]
if args.crop:
    view = View(frame_size=view.frame_size, crops={**view.crops, **dict(map(crop_override, args.crop))},
                anchors=view.anchors)
with tempfile.TemporaryDirectory() as out:  # the stage's setting, with these phases and a one-step full task
    base = params["model"]["tiny_path"]
    if args.vision_width or args.patch_size:
        base = resized_model(base, Path(out) / "resized", args.vision_width, args.patch_size)
    cfg = stage_config(params["perception"], base, params["seed"],
                       params["synthetic"]["backgrounds"], params["screens"]["shared_screenshots"],
                       output_dir=f"{out}/base", n_frames=args.n_frames, n_val=args.n_val, max_steps=1,
                       eval_every=10**9, reading=json.loads(args.phases), max_new_tokens=40, view=view.to_json())
    summary = train(cfg, progress=lambda message: print(message, flush=True))  # each phase's end: its prior beside
    print(json.dumps(summary["reading_phases"]))
