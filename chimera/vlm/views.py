"""What a model is shown of a screenshot: the frame as one image, or a small frame plus HUD-region crops as extra
images (the tiny stand-in reads HUD digits only from crops: chimera/training/perception.py).

A crop may follow the HUD scale: CS2 lets a player scale the HUD, which grows every element about its corner of
the screen. A crop with an anchor (a point of the frame, in fractions: (0, 1) is the bottom-left corner) is
scaled about it by the frame's HUD scale (`chimera.screens.hud.estimate_hud_scale`), so a digit lands on the
same pixels of the crop whatever the scale: the tiny model reads digits by position (BENCHMARKS.md).

The view is part of the model: it is saved in the model folder (`chimera_view.json`) by the trainer that chose it,
so every trainer, backend and stage that loads a model shows it the images it learned on. A folder without the
file (Qwen3-VL-8B, any hub model) sees the whole frame, sized by the processor's pixel budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

VIEW_FILE = "chimera_view.json"
Box = tuple[float, float, float, float]  # fractions of the frame: x0, y0, x1, y1
Point = tuple[float, float]               # fractions of the frame: x, y
MIN_HUD_CONTRAST = 60.0  # below this no HUD was found (synthetic frames score 76+): anchored crops take scale 1


@dataclass(frozen=True)
class View:
    frame_size: tuple[int, int] | None = None              # (w, h) the whole frame is resized to; None: processor decides
    crops: dict[str, tuple[Box, tuple[int, int]]] = field(default_factory=dict)  # name -> (box at HUD scale 1, (w, h))
    anchors: dict[str, Point] = field(default_factory=dict)  # name -> the point its crop scales about with the HUD

    def hud_scale(self, frame: Image.Image) -> float:
        """The frame's HUD scale, or 1.0 when no crop follows it or no HUD is found."""
        if not self.anchors:
            return 1.0
        from chimera.screens.hud import estimate_hud_scale

        scale, contrast = estimate_hud_scale(frame)
        return scale if contrast >= MIN_HUD_CONTRAST else 1.0

    def boxes(self, scale: float = 1.0) -> dict[str, Box]:
        """Each crop's box (fractions of the frame) at a HUD scale: scaled about its anchor, clipped to the frame."""
        out = {}
        for name, (box, _) in self.crops.items():
            ax, ay = self.anchors.get(name, (0.0, 0.0))
            s = scale if name in self.anchors else 1.0
            x0, y0, x1, y1 = (ax + (box[0] - ax) * s, ay + (box[1] - ay) * s, ax + (box[2] - ax) * s, ay + (box[3] - ay) * s)
            out[name] = (max(0.0, x0), max(0.0, y0), min(1.0, x1), min(1.0, y1))
        return out

    def images(self, frame: Image.Image, hud_scale: float | None = None) -> list[Image.Image]:
        """The frame and its crops, cut at `hud_scale` (default: the frame's own estimate)."""
        frame = frame.convert("RGB")
        out = [frame.resize(self.frame_size, Image.BILINEAR) if self.frame_size else frame]
        w, h = frame.size
        boxes = self.boxes(self.hud_scale(frame) if hud_scale is None else hud_scale)
        for name, (_, size) in self.crops.items():
            x0, y0, x1, y1 = boxes[name]
            box = (int(x0 * w), int(y0 * h), max(int(x0 * w) + 1, int(x1 * w)), max(int(y0 * h) + 1, int(y1 * h)))
            out.append(frame.crop(box).resize(tuple(size), Image.BILINEAR))
        return out

    @property
    def n_images(self) -> int:
        return 1 + len(self.crops)

    def to_json(self) -> dict:
        return {"frame_size": list(self.frame_size) if self.frame_size else None,
                "crops": {k: {"box": list(box), "size": list(size)}
                          | ({"anchor": list(self.anchors[k])} if k in self.anchors else {})
                          for k, (box, size) in self.crops.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "View":
        frame = data.get("frame_size")
        crops = data.get("crops") or {}
        return cls(tuple(frame) if frame else None, {k: (tuple(v["box"]), tuple(v["size"])) for k, v in crops.items()},
                   {k: tuple(v["anchor"]) for k, v in crops.items() if v.get("anchor") is not None})


WHOLE_FRAME = View()


def load_view(model_path: str | Path | None) -> View:
    path = Path(model_path or "") / VIEW_FILE
    if model_path and path.is_file():
        try:
            return View.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a Chimera view file ({exc})") from exc
    return WHOLE_FRAME


def save_view(view: View, model_dir: str | Path) -> None:
    (Path(model_dir) / VIEW_FILE).write_text(json.dumps(view.to_json(), indent=2) + "\n")


def fit_processor(processor, view: View) -> None:
    """A view sizes every image itself (multiples of 32): set the processor's pixel bounds so it never resizes them
    (a params pixel budget is for whole frames; it does not apply to a model with a view)."""
    if view.frame_size is None:
        return
    pixels = [w * h for w, h in [view.frame_size] + [size for _, size in view.crops.values()]]
    processor.image_processor.size = {"shortest_edge": min(pixels), "longest_edge": max(pixels)}
