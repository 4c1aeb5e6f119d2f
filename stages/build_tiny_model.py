"""Stage build_tiny_model: the tiny local Qwen3-VL (CPU, no download), deterministic."""

from _common import log, params

from chimera.vlm.models import build_tiny_model

p = params("model")
path = build_tiny_model(p["tiny_path"], seed=params()["seed"], vocab_size=p["tiny_vocab_size"])
log("build_tiny_model").info("built %s", path)
