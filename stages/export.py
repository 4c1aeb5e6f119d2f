"""Stage export: the experiment's best evaluated model -> models/export (merged safetensors, processor, model card)."""

from _common import log, params

import json
from pathlib import Path

from chimera.export import export_model, git_revision, lineage_of, model_card
from chimera.io import atomic_write_text, read_json

models = params("infer")["models"]
report = read_json("metrics/report.json")
rows = report["rows"]
# the best game_state value accuracy among the experiment's models; a tie keeps the earlier (simpler) one
best = max(models, key=lambda m: (rows[m]["value_accuracy"]["value"], -list(models).index(m)))
folder = export_model(models[best]["path"], "models/export")
experiment = {"seed": params()["seed"], "model": {"name": params("model")["name"]}, "infer": {"models": models},
              "sft": {"runs": params("sft")["runs"]}, "grpo": {"base": params("grpo")["base"]}}
name, lineage = lineage_of(models[best]["path"], experiment)
data = {"labels": "data/labeled/labels", "splits": "data/labeled/splits.parquet", "report": "metrics/report.json"}
atomic_write_text(folder / "README.md", model_card(name, lineage, rows[best], rows.get("constant"), git_revision(), data))
(Path("metrics") / "export.json").write_text(json.dumps({"model": best, "value_accuracy": rows[best]["value_accuracy"],
                                                         "beats_constant": best in report["models_beating_constant"]},
                                                        indent=2) + "\n")
log("export").info("%s (value accuracy %.3f) -> %s", best, rows[best]["value_accuracy"]["value"], folder)
