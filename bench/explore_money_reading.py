"""Does a base's money reading, asked of the money crop alone (the reading phase's prompt), carry over to real CS2
screenshots? The same question on freshly rendered frames in each of the renderer's looks, beside it.

    python bench/explore_money_reading.py MODEL_FOLDER            # e.g. a base kept by perception_seeds.py --keep
    python bench/explore_money_reading.py MODEL_FOLDER --sheet docs/money_crops_real_and_cs2_look.png
                        # ...and a picture: each real money crop (left) beside a CS2-look one (right), as the model sees them
    python bench/explore_money_reading.py MODEL_FOLDER --hud-scale 1   # real crops cut at HUD scale 1, not the
                        # estimate (which misjudges most real frames: BENCHMARKS.md, nineteenth session)

Real frames: the shared screenshots a person read a money amount off (data/hand_labels/real_screenshots.csv), cut
by the model's own view (its crops follow the HUD scale). Synthetic: 48 frames of the perception pool's sampler at a
seed no run trains on, in each look. Prints each reading beside the truth and the frame's estimated HUD scale, the
hits, and the digits in place beside the constant's.
"""
import argparse
import random
import re
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.io import load_params  # noqa: E402
from chimera.labeling.hand import read_hand_labels  # noqa: E402
from chimera.screens.hud import estimate_hud_scale, sample_state  # noqa: E402
from chimera.training.perception import PerceptionConfig, greedy_answers, most_common, render_pool  # noqa: E402
from chimera.vlm.models import ModelConfig, load_model  # noqa: E402
from chimera.vlm.views import fit_processor, load_view  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("model")
parser.add_argument("--frames", type=int, default=48)
parser.add_argument("--sheet", type=Path, help="write the real money crops beside as many CS2-look ones (PNG, 2x)")
parser.add_argument("--hud-scale", type=float, default=None,
                    help="cut the real crops at this HUD scale instead of the view's estimate from the frame")
parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/screenshots")
args = parser.parse_args()

model, processor = load_model(ModelConfig(name=args.model))
view = load_view(args.model)
fit_processor(processor, view)
money = 1 + list(view.crops).index("money")


def read_money(crops: list[Image.Image]) -> list[int | None]:
    """The amount each money crop alone is read as, asked the reading phase's question."""
    texts = greedy_answers(model, processor, [[crop] for crop in crops], max_new_tokens=24, research=False,
                           reading=True)
    return [int(found[1]) if (found := re.search(r'"player_money":\s*(\d+)', text)) else None for text in texts]


def digits_in_place(read: int | None, truth: int) -> int:
    """How many of the truth's digits the reading has in their place, counted from the right (CS2 right-aligns
    its money): 10650 for 10600 has 4 of 5, 850 for 1300 has 1 of 4."""
    t = str(truth)
    r = str(read if read is not None else "").rjust(len(t), " ")[-len(t):]
    return sum(a == b for a, b in zip(r, t))


def commonest_amount(n: int = 4000) -> int:
    """The constant baseline: the sampler's commonest money amount (the pistol round's 800), as the reading phases
    report theirs (perception.most_common), over n sampled states."""
    states = [(None, sample_state(random.Random(f"constant-{i}"))[0]) for i in range(n)]
    return int(most_common(states, "player_money")[0])


labels = read_hand_labels("data/hand_labels/real_screenshots.csv")
rows = [(file, label["player_money"]) for file, label in labels.items() if label["player_money"] is not None]
frames = [Image.open(args.shared / file).convert("RGB") for file, _ in rows]
crops = [view.images(frame, args.hud_scale)[money] for frame in frames]
truth = [amount for _, amount in rows]
got = read_money(crops)
constant = commonest_amount()
n_digits = sum(len(str(t)) for t in truth)
constant_digits = sum(digits_in_place(constant, t) for t in truth)
print(f"real: {sum(g == t for g, t in zip(got, truth))}/{len(truth)} money read off the crop alone, "
      f"{sum(map(digits_in_place, got, truth))}/{n_digits} digits in place; the constant {constant}: "
      f"{sum(constant == t for t in truth)}/{len(truth)}, {constant_digits}/{n_digits}")
for (file, _), frame, g, t in zip(rows, frames, got, truth):
    scale, contrast = estimate_hud_scale(frame)
    print(f"  {file}: read {g}, a person read {t} (HUD scale estimated {scale:.3f}, contrast {contrast:.1f})")
p = load_params("params.yaml")
for look_share, look in ((0.0, "classic"), (1.0, "cs2")):
    cfg = PerceptionConfig(base_model="-", output_dir="-", seed=977, cs2_look_share=look_share, view=view.to_json(),
                           backgrounds=p["synthetic"]["backgrounds"],
                           screenshots_dir=p["screens"]["shared_screenshots"])
    pool = render_pool(cfg, 0, args.frames)
    got = read_money([images[money] for images, _ in pool])
    hits = sum(g == state.player_money for g, (_, state) in zip(got, pool))
    print(f"synthetic, {look} look: {hits}/{len(pool)} money read off the crop alone")
if args.sheet:
    drawn = [images[money] for images, _ in pool[:len(crops)]]  # the CS2 look's, the loop's last
    width, height = crops[0].size
    sheet = Image.new("RGB", (2 * width + 10, height * len(crops)), "white")
    for row, (real, synthetic) in enumerate(zip(crops, drawn)):
        sheet.paste(real, (0, row * height))
        sheet.paste(synthetic, (width + 10, row * height))
    sheet.resize((2 * sheet.width, 2 * sheet.height), Image.NEAREST).save(args.sheet)
    print(f"wrote {args.sheet}")
