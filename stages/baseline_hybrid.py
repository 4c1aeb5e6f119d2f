"""Stage baseline_hybrid: a model's answers with OCR's confident numbers in place of its own."""

from _common import log, params

from chimera.evaluation.baselines import hybrid_record
from chimera.records import load_records, write_records

p = params("ocr")
model = params("report")["hybrid_with"]
ocr = load_records("data/predictions/ocr")
predictions = load_records(f"data/predictions/{model}")
records = [hybrid_record(predictions.get(i), ocr[i], p["min_confidence"], model) for i in ocr]
write_records("data/predictions/hybrid", records)
used = sum(len(r["ocr_fields_used"]) for r in records)
log("baseline_hybrid").info("hybrid of OCR and %s over %d frames (%d fields from OCR)", model, len(records), used)
