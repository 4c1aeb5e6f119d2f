"""Stage review: reports/review.html: the eval split's frames beside their labels and the experiment's answers (A,
the research plan's named models B, C, D and the control at the grid's first seed, and E at its first seed)."""

from _common import log, params

from chimera.grid import grpo_cells, named_cells
from chimera.io import read_parquet
from chimera.records import load_records
from chimera.review.page import write_review

p = params("review")
grpo = params("grpo")
first_e = grpo_cells({"arms": grpo["arms"], "shots": grpo["shots"], "seeds": grpo["seeds"][:1]})
models = [*params("infer")["models"], *(keys[0] for keys in named_cells(params("sweep")).values()), *first_e]
splits = read_parquet("data/labeled/splits.parquet")
frames = splits[splits.split == params("infer")["split"]]
labels = load_records("data/labeled/labels")
predictions = {m: load_records(f"data/predictions/{m}") for m in models}
page = write_review("reports/review.html", frames[["id", "path", "source"]].to_dict("records"), labels, predictions,
                    params("evaluate")["tolerances"], embed=p["embed"], image_width=p["image_width"],
                    title=f"Chimera review: {len(frames)} {params('infer')['split']} frames, {', '.join(models)}")
log("review").info("%s: %d frames, %d models (%.0f KiB); serve with `python -m http.server`, open /reports/review.html",
                   page, len(frames), len(models), page.stat().st_size / 1024)
