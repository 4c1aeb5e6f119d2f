"""Stage export: the copilot, the best evaluated reader that writes an analysis (chimera.export.copilot_choice) ->
models/export (merged safetensors, processor, model card)."""

from _common import log, params

from chimera.export import copilot_choice, export_with_card
from chimera.grid import experiment_models
from chimera.io import read_json, write_json

p = {"seed": params()["seed"], "model": {"name": params("model")["name"]}, "infer": {"models": params("infer")["models"]},
     "sweep": params("sweep"),
     "grpo": {"arms": params("grpo")["arms"], "shots": params("grpo")["shots"], "seeds": params("grpo")["seeds"]}}
models = experiment_models(p)  # A, every cell of the SFT grid and every E
report = read_json("metrics/report.json")
rows = report["rows"]
# the best reader among the models that write an analysis (chimera.export.copilot_choice)
best, why = copilot_choice({m: (rows[m]["value_accuracy"]["value"], rows[m]["analysis_accuracy"]["value"])
                            for m in models})
folder, _ = export_with_card(models[best], "models/export", p, report)
write_json("metrics/export.json", {"model": best, "why": why, "value_accuracy": rows[best]["value_accuracy"],
                                   "analysis_accuracy": rows[best]["analysis_accuracy"],
                                   "beats_constant": best in report["models_beating_constant"]})
log("export").info("%s -> %s", why, folder)
