"""params.yaml `train` section -> the LoRA fields shared by every trainer config."""

from __future__ import annotations

from chimera.training.sft import LANGUAGE_LORA_TARGETS


def lora_settings(train: dict) -> dict:
    targets = train["target_modules"]
    return {"lora_r": train["lora_r"], "lora_alpha": train["lora_alpha"], "lora_dropout": train["lora_dropout"],
            "target_modules": LANGUAGE_LORA_TARGETS if targets == "language" else targets,
            "modules_to_save": train["modules_to_save"], "max_pixels": train["max_pixels"]}
