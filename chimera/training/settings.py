"""params.yaml sections -> the fields every trainer config shares.

One pixel budget: trainers and inference both read `model.min_pixels` / `model.max_pixels`, so a model is
trained on the image size it is evaluated at; `model.quantization` (4-bit QLoRA) reaches every trainer.
"""

from __future__ import annotations

from chimera.training.sft import LANGUAGE_LORA_TARGETS


def lora_settings(train: dict) -> dict:
    targets = train["target_modules"]
    return {"lora_r": train["lora_r"], "lora_alpha": train["lora_alpha"], "lora_dropout": train["lora_dropout"],
            "target_modules": LANGUAGE_LORA_TARGETS if targets == "language" else targets,
            "modules_to_save": train["modules_to_save"], "gradient_checkpointing": train["gradient_checkpointing"]}


def model_settings(model: dict) -> dict:
    return {"max_pixels": model["max_pixels"], "min_pixels": model["min_pixels"], "quantization": model["quantization"]}
