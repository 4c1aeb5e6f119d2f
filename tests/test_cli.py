"""The CLI and the stages share their defaults: params.yaml, with the library's fallbacks held equal to it."""

import yaml

from chimera.cli import _model_config, _settings
from chimera.evaluation.metrics import DEFAULT_TOLERANCES
from chimera.evaluation.ocr import DEFAULT_REGIONS, DEFAULT_VITALS_ORDER, OcrConfig
from chimera.vlm.backends import DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS
from conftest import ROOT

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_library_fallbacks_equal_params_yaml():
    assert DEFAULT_MAX_NEW_TOKENS == PARAMS["infer"]["max_new_tokens"]
    assert DEFAULT_BATCH_SIZE == PARAMS["infer"]["batch_size"]
    assert OcrConfig.min_confidence == PARAMS["ocr"]["min_confidence"]
    assert DEFAULT_TOLERANCES == PARAMS["evaluate"]["tolerances"]
    assert {k: list(v) for k, v in DEFAULT_REGIONS.items()} == PARAMS["ocr"]["regions"]
    assert list(DEFAULT_VITALS_ORDER) == PARAMS["ocr"]["vitals_order"]


def test_cli_reads_the_stages_settings(monkeypatch, tmp_path):
    settings = _settings()
    assert settings["max_new_tokens"] == PARAMS["infer"]["max_new_tokens"]
    assert settings["tolerances"] == PARAMS["evaluate"]["tolerances"]
    config = _model_config("some/model")
    assert (config.max_pixels, config.min_pixels) == (PARAMS["model"]["max_pixels"], PARAMS["model"]["min_pixels"])
    # a project whose params.yaml says otherwise is followed
    changed = {**PARAMS, "infer": {**PARAMS["infer"], "max_new_tokens": 77}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed))
    monkeypatch.chdir(tmp_path)
    assert _settings()["max_new_tokens"] == 77
