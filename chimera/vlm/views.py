"""What a model is shown of a screenshot: the frame as one image, or a small frame plus HUD-region crops as extra
images (the tiny stand-in reads HUD digits only from crops: chimera/training/perception.py).

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


@dataclass(frozen=True)
class View:
    frame_size: tuple[int, int] | None = None              # (w, h) the whole frame is resized to; None: processor decides
    crops: dict[str, tuple[Box, tuple[int, int]]] = field(default_factory=dict)  # name -> (box, (w, h))

    def images(self, frame: Image.Image) -> list[Image.Image]:
        frame = frame.convert("RGB")
        out = [frame.resize(self.frame_size, Image.BILINEAR) if self.frame_size else frame]
        w, h = frame.size
        for (x0, y0, x1, y1), size in self.crops.values():
            box = (int(x0 * w), int(y0 * h), max(int(x0 * w) + 1, int(x1 * w)), max(int(y0 * h) + 1, int(y1 * h)))
            out.append(frame.crop(box).resize(tuple(size), Image.BILINEAR))
        return out

    @property
    def n_images(self) -> int:
        return 1 + len(self.crops)

    def to_json(self) -> dict:
        return {"frame_size": list(self.frame_size) if self.frame_size else None,
                "crops": {k: {"box": list(box), "size": list(size)} for k, (box, size) in self.crops.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "View":
        frame = data.get("frame_size")
        return cls(tuple(frame) if frame else None,
                   {k: (tuple(v["box"]), tuple(v["size"])) for k, v in (data.get("crops") or {}).items()})


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
