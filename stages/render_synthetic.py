"""Stage render_synthetic: N synthetic HUD frames with exact truth -> data/frames/synthetic + manifest."""

from _common import log, params

import random
from pathlib import Path

from tqdm import tqdm

from chimera.screens.frames import save_frame, write_manifest
from chimera.screens.hud import extras_dict, label_elements, render_frame, sample_state, sample_style

p, seed = params("synthetic"), params()["seed"]
shots = Path(params("screens")["shared_screenshots"])
rows = []
for i in tqdm(range(p["n_frames"]), desc="render", unit="frame"):
    rng = random.Random(seed * 1_000_003 + i)
    state, extras = sample_state(rng)
    style = sample_style(rng, p["backgrounds"])
    image, boxes = render_frame(state, extras, style, shots)
    rows.append(save_frame(image, Path("data/frames/synthetic"), "synthetic", f"render:{seed}:{i}",
                           truth=state.model_dump(mode="json"),
                           # elements: per labelled field, the HUD elements (keys of boxes) that show it
                           meta={"extras": extras_dict(extras), "style": vars(style), "boxes": boxes,
                                 "elements": label_elements(state, extras)}))
df = write_manifest("data/frames/synthetic.parquet", rows)
log("render_synthetic").info("%d frames, %s", len(df), df.groupby("width").size().to_dict())
