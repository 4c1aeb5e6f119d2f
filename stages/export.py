"""Stage export: the experiment's best evaluated model -> models/export (merged safetensors, processor, model card)."""

from _common import log, params

from chimera.export import export_with_card
from chimera.grid import experiment_models
from chimera.io import read_json, write_json

p = {"seed": params()["seed"], "model": {"name": params("model")["name"]}, "infer": {"models": params("infer")["models"]},
     "sweep": params("sweep"),
     "grpo": {"arms": params("grpo")["arms"], "shots": params("grpo")["shots"], "seeds": params("grpo")["seeds"]}}
models = experiment_models(p)  # A, every cell of the SFT grid and every E
report = read_json("metrics/report.json")
rows = report["rows"]
# the best game_state value accuracy among the experiment's models; a tie keeps the earlier (simpler) one
best = max(models, key=lambda m: (rows[m]["value_accuracy"]["value"], -list(models).index(m)))
folder, _ = export_with_card(models[best], "models/export", p, report)
write_json("metrics/export.json", {"model": best, "value_accuracy": rows[best]["value_accuracy"],
                                   "beats_constant": best in report["models_beating_constant"]})
log("export").info("%s (value accuracy %.3f) -> %s", best, rows[best]["value_accuracy"]["value"], folder)
