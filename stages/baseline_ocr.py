"""Stage baseline_ocr: RapidOCR reads money, armor and health from fixed HUD regions of every evaluation frame."""

from _common import log, params

from tqdm import tqdm

from chimera.evaluation.baselines import ocr_record
from chimera.evaluation.ocr import ocr_config, read_hud
from chimera.io import read_parquet, set_max_image_pixels
from chimera.records import write_records
from chimera.vlm.backends import open_image

set_max_image_pixels(params("screens")["max_image_pixels"])  # docs/errors.md: bombs refused

config = ocr_config(params("ocr"))
splits = read_parquet("data/labeled/splits.parquet")
frames = splits[splits.split == params("infer")["split"]]
records = []
for row in tqdm(list(frames.itertuples()), desc="ocr", unit="frame"):
    try:
        records.append(ocr_record(row.id, read_hud(open_image(row.path), config)))
    except (OSError, ValueError) as exc:  # an unreadable frame is a miss, named, and the batch goes on
        log("baseline_ocr").warning("%s: %s", row.path, exc)
        records.append(ocr_record(row.id, None, f"{row.path}: {type(exc).__name__}: {exc}"))
write_records("data/predictions/ocr", records)
log("baseline_ocr").info("OCR read %d frames", len(records))
