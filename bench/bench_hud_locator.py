"""Can the HUD be located without the renderer's help? Two classical locators, per resolution of the pool's style
sampler, against the renderer's truth:

- a pixel mask (light pixels next to the text's dark outline) in the money region: its bounding box against the
  renderer's own box of the money text (the perception exploration, `explore_perception.py view=moneybox`, shows
  the tiny model reads money once it is cut to its box);
- `estimate_hud_scale` (the view's anchored crops follow it): its scale against the style's, and its time; and
  what it says of the shared real screenshots, whose HUD is CS2's own.

    python bench/bench_hud_locator.py --frames 90
"""

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.screens.hud import estimate_hud_scale, render_frame, sample_state, sample_style  # noqa: E402
from chimera.vlm.views import MIN_HUD_CONTRAST  # noqa: E402
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
found, total, scale_errors, seconds = Counter(), Counter(), {}, 0.0
for i in range(args.frames):
    rng = random.Random(10_000_000 + i)
    state, extras = sample_state(rng)
    style = sample_style(rng, backgrounds)
    image, boxes = render_frame(state, extras, style, shots)
    w, h = image.size
    y0 = int(0.86 * h)
    box, truth = text_box(image.crop((0, y0, int(0.2 * w), h))), boxes.get("money")
    total[w] += 1
    started = time.perf_counter()
    scale, contrast = estimate_hud_scale(image)
    seconds += time.perf_counter() - started
    scale_errors.setdefault(w, []).append((abs(scale - style.hud_scale), contrast))
    if box and truth:
        truth = (truth[0], truth[1] - y0, truth[2], truth[3] - y0)
        error = max(abs(a - b) for a, b in zip(box, truth)) / max(1, truth[3] - truth[1])
        found[w] += error < args.tolerance
for width in sorted(total, reverse=True):
    errors = np.array(scale_errors[width])
    print(f"width {width}: money box found in {found[width]} of {total[width]} frames; HUD scale within 0.005 in "
          f"{int((errors[:, 0] <= 0.005).sum())} of {len(errors)} (largest error {errors[:, 0].max():.3f}, "
          f"lowest contrast {errors[:, 1].min():.0f})")
print(f"estimate_hud_scale: {1000 * seconds / args.frames:.0f} ms a frame")
for path in sorted(p for p in shots.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")):
    scale, contrast = estimate_hud_scale(Image.open(path))
    print(f"real {path.name}: scale {scale:.3f}, contrast {contrast:.0f}"
          f"{'' if contrast >= MIN_HUD_CONTRAST else ' (below the view threshold: scale 1)'}")
