"""The CS2 look's money in one of several bold faces (Debian's Liberation and DejaVu's condensed among them), not only
the style font's bold DejaVu: does a base that learned many faces read real money crops? Runs
bench/perception_seeds.py with the renderer's money font swapped, rendering in this process (workers 1), so that the
swap reaches every frame; then check the kept base with bench/explore_money_reading.py.

    python bench/explore_cs2_fonts.py 0 --keep out --set '{"workers": 1, "cs2_look_share": 0.5, "reading": [...]}'
    python bench/explore_money_reading.py out/seed-0
    python bench/explore_cs2_fonts.py --faces /usr/share/fonts/truetype/play/Play-Bold.ttf -- 0 --keep out --set ...
                                        # other faces (font files; a bare name is one of matplotlib's)
    python bench/explore_cs2_fonts.py --capture --faces ... -- 0 ...   # and every CS2-look frame saved as a JPEG of
                                        # quality 40-90 and blurred by up to a pixel, as a screenshot or a video is

The six default faces need the Debian packages fonts-liberation and fonts-dejavu-extra (Chromium's install brings
them); Play (fonts-play) is the closest free face to CS2's own digits that Debian has (BENCHMARKS.md, nineteenth
session).
"""
import hashlib
import io
import random
import runpy
import sys
from pathlib import Path

from PIL import Image, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import chimera.screens.hud as hud  # noqa: E402

FACES = ["/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
         "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf",
         "DejaVuSans-Bold.ttf", "DejaVuSansMono-Bold.ttf"]  # the last two from matplotlib, as the renderer's own
CAPTURE = sys.argv[1:2] == ["--capture"]
if CAPTURE:
    sys.argv.pop(1)
if sys.argv[1:2] == ["--faces"]:  # --faces F... -- SEED ...: the rest goes to perception_seeds.py
    end = sys.argv.index("--")
    FACES, sys.argv = sys.argv[2:end], sys.argv[:1] + sys.argv[end + 1:]
missing = [face for face in FACES if face.startswith("/") and not Path(face).is_file()]
if missing:
    raise SystemExit(f"explore_cs2_fonts: no font file {missing}: apt-get install fonts-liberation fonts-dejavu-extra "
                     "(fonts-play for Play)")

matplotlib_font, drawn = hud._font, [0]


def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(name, max(6, size)) if name.startswith("/") else matplotlib_font(name, size)


def bold(style_font: str) -> str:
    """One of FACES for each CS2-look money drawn, in a fixed order for a run (the frames render in one process)."""
    drawn[0] += 1
    return FACES[int(hashlib.md5(f"{style_font}{drawn[0]}".encode()).hexdigest(), 16) % len(FACES)]


def captured(render):
    """render_frame, whose CS2-look frames come back through a JPEG and a slight blur, drawn from the frame's seed."""
    def render_frame(state, extras, style, screenshots_dir=None, look="classic"):
        frame, boxes = render(state, extras, style, screenshots_dir, look)
        if look != "cs2":
            return frame, boxes
        rng = random.Random(f"capture-{style.seed}")
        buffer = io.BytesIO()
        frame.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.0))).save(buffer, "JPEG", quality=rng.randint(40, 90))
        return Image.open(buffer).convert("RGB"), boxes
    return render_frame


hud._font, hud._bold = font, bold
if CAPTURE:
    hud.render_frame = captured(hud.render_frame)
sys.argv = [str(Path(__file__).parent / "perception_seeds.py"), *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
