"""Stage baseline_ocr: RapidOCR reads money, armor and health from fixed HUD regions of every evaluation frame,
in `ocr.workers` processes of one onnxruntime thread each."""

from _common import log, params

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from tqdm import tqdm

from chimera.evaluation.baselines import ocr_record
from chimera.evaluation.ocr import ocr_config, read_hud
from chimera.io import open_image, read_parquet, set_max_image_pixels
from chimera.records import write_records

set_max_image_pixels(params("screens")["max_image_pixels"])  # docs/errors.md: bombs refused

p = params("ocr")
workers = max(1, p["workers"])
config = ocr_config(p) if workers == 1 else replace(ocr_config(p), threads=1)


def read_frame(frame: tuple[str, str]) -> dict:
    """One frame's record; an unreadable frame is a miss, named, and the batch goes on."""
    frame_id, path = frame
    try:
        return ocr_record(frame_id, read_hud(open_image(path), config))
    except (OSError, ValueError) as exc:
        log("baseline_ocr").warning("%s: %s", path, exc)
        return ocr_record(frame_id, None, f"{path}: {type(exc).__name__}: {exc}")


splits = read_parquet("data/labeled/splits.parquet")
frames = splits[splits.split == params("infer")["split"]]
todo = list(frames[["id", "path"]].itertuples(index=False, name=None))
if workers == 1:
    records = [read_frame(f) for f in tqdm(todo, desc="ocr", unit="frame")]
else:  # forked workers (the stage runs as a script: nothing re-runs it), each with its own one-thread engine
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        records = list(tqdm(pool.map(read_frame, todo, chunksize=4), total=len(todo), desc="ocr", unit="frame"))
write_records("data/predictions/ocr", records)
log("baseline_ocr").info("OCR read %d frames in %d process(es)", len(records), workers)
