"""Can the money text be found without the renderer's help? A pixel mask (light pixels next to the text's dark
outline) in the money region, its bounding box against the renderer's own box of the money text, per resolution
of the pool's style sampler. The perception exploration (`explore_perception.py view=moneybox`) shows the tiny
model reads money once it is cut to its box; this measures how often a classical locator finds that box.

    python bench/bench_hud_locator.py --frames 90
"""

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.screens.hud import render_frame, sample_state, sample_style  # noqa: E402
from chimera.io import load_params  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--frames", type=int, default=90)
parser.add_argument("--tolerance", type=float, default=0.25, help="largest edge error, in text heights")
args = parser.parse_args()


def text_box(region: Image.Image) -> tuple[int, int, int, int] | None:
    """Bounding box of light (white, or the buy-time green) pixels within a few pixels of dark ones."""
    g = np.asarray(region.convert("RGB")).astype(int)
    light = (g.min(axis=2) > 150) | ((g[..., 1] > 170) & (g[..., 1] > g[..., 0] + 40))
    dark = Image.fromarray(((g.max(axis=2) < 80) * 255).astype("uint8"))
    r = max(1, region.size[1] // 40)
    mask = light & (np.asarray(dark.filter(ImageFilter.MaxFilter(2 * r + 1))) > 0)
    cols, rows = np.nonzero(mask.any(axis=0))[0], np.nonzero(mask.any(axis=1))[0]
    return None if len(cols) < 3 else (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


shots = Path("data/raw/screenshots")
backgrounds = load_params("params.yaml")["synthetic"]["backgrounds"]
found, total = Counter(), Counter()
for i in range(args.frames):
    rng = random.Random(10_000_000 + i)
    state, extras = sample_state(rng)
    image, boxes = render_frame(state, extras, sample_style(rng, backgrounds), shots)
    w, h = image.size
    y0 = int(0.86 * h)
    box, truth = text_box(image.crop((0, y0, int(0.2 * w), h))), boxes.get("money")
    total[w] += 1
    if box and truth:
        truth = (truth[0], truth[1] - y0, truth[2], truth[3] - y0)
        error = max(abs(a - b) for a, b in zip(box, truth)) / max(1, truth[3] - truth[1])
        found[w] += error < args.tolerance
for width in sorted(total, reverse=True):
    print(f"width {width}: money box found in {found[width]} of {total[width]} frames")
