"""The CLI and the stages share their defaults: params.yaml, with the library's fallbacks held equal to it."""

import sys

import yaml

from chimera.cli import _model_config, _settings
from chimera.evaluation.metrics import DEFAULT_TOLERANCES
from chimera.evaluation.ocr import DEFAULT_REGIONS, DEFAULT_VITALS_ORDER, OcrConfig
from chimera.vlm.backends import DEFAULT_BATCH_SIZE, DEFAULT_CONSTRAINED, DEFAULT_MAX_NEW_TOKENS
from conftest import ROOT

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_library_fallbacks_equal_params_yaml():
    assert DEFAULT_MAX_NEW_TOKENS == PARAMS["infer"]["max_new_tokens"]
    assert DEFAULT_BATCH_SIZE == PARAMS["infer"]["batch_size"]
    assert DEFAULT_CONSTRAINED == PARAMS["infer"]["constrained"]
    assert OcrConfig.min_confidence == PARAMS["ocr"]["min_confidence"]
    import chimera.io

    assert chimera.io.MAX_IMAGE_PIXELS == PARAMS["screens"]["max_image_pixels"]


def test_the_pixel_limit_from_params_refuses_images_before_decoding(tmp_path, monkeypatch):
    import pytest
    from PIL import Image

    import chimera.io

    Image.new("RGB", (200, 200)).save(tmp_path / "big.png")
    monkeypatch.setattr(chimera.io, "MAX_IMAGE_PIXELS", chimera.io.MAX_IMAGE_PIXELS)  # restored after the test
    chimera.io.set_max_image_pixels(10_000)  # what a stage does with params.yaml screens.max_image_pixels
    with pytest.raises(ValueError, match="big.png: unreadable image: 200x200 pixels is above the limit of 10,000"):
        chimera.io.open_image(tmp_path / "big.png")
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


HOSTILE = ("[/bold] [link=file:///etc/passwd]click[/link] \x1b]0;pwned\x07 \x1b[2J \x1b]52;c;ZXZpbA==\x07 "
           "\u202eevil\u202c \x9b31m")


def test_model_text_reaches_the_terminal_inert():
    """Rich markup prints literally (no MarkupError, no hyperlink); escape sequences (title, clear screen,
    clipboard write, C1 CSI) and bidi overrides are shown as visible escapes, never sent to the terminal."""
    import io

    from rich.console import Console

    from chimera.cli import inert, print_analysis
    from chimera.schema import Analysis, example_analysis

    data = example_analysis().model_dump(mode="json")
    data["advice"].update(primary_action=HOSTILE, reasoning=HOSTILE, callout=HOSTILE)
    data["analysis"]["immediate_threats"] = [HOSTILE]
    data["game_state"]["map_name"] = HOSTILE
    out = io.StringIO()
    print_analysis(Console(file=out, width=400, color_system=None), Analysis.model_validate(data), HOSTILE)
    text = out.getvalue()
    assert not any(c in text for c in "\x1b\x07\x9b\u202e")
    assert "[/bold]" in text and "[link=file:///etc/passwd]" in text and "\\x1b]0;pwned" in text
    assert inert("plain text, 100 HP") == "plain text, 100 HP"


def test_parse_prints_model_supplied_keys_inert(tmp_path):
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from chimera.cli import app
    from chimera.schema import example_analysis

    data = example_analysis().model_dump(mode="json")
    data["game_state"]["\x1b]0;owned\x07"] = 1  # an unknown key: reported in a warning
    path = tmp_path / "out.txt"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["parse", str(path)])
    assert result.exit_code == 0
    assert "\x1b]0;owned" not in result.output and "\\x1b]0;owned" in result.output


def test_analyze_without_a_model_picks_the_best_built_one_and_says_why(tmp_path, monkeypatch):
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from chimera.cli import app, best_built_model

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    Image.new("RGB", (64, 36)).save(tmp_path / "shot.png")
    # before `make repro`: a clear message saying what to run, no random model
    result = CliRunner().invoke(app, ["analyze", "shot.png"])
    assert result.exit_code == 1 and "make repro" in result.output and "--model" in result.output
    # the base alone: used, and named as such
    (tmp_path / PARAMS["perception"]["out"]).mkdir(parents=True)
    assert best_built_model() == (PARAMS["perception"]["out"], best_built_model()[1])
    assert "perception-pretrained base" in best_built_model()[1]
    # evaluated models: the best value accuracy whose folder exists wins
    (tmp_path / "metrics/eval/sft").mkdir(parents=True)
    for name, accuracy in (("A_zeroshot", 0.6), ("sft/perception-100-1", 0.7), ("sft/pretrain_strategy-100-0", 0.9)):
        (tmp_path / "metrics/eval" / f"{name}.json").write_text(json.dumps({"value_accuracy": {"value": accuracy}}))
    b_seed_1 = "models/sft/perception-100-1/final_model/merged_16bit"
    (tmp_path / b_seed_1).mkdir(parents=True)
    path, why = best_built_model()  # C scored best but its folder is gone: B at seed 1, a cell of the grid
    assert path == b_seed_1 and why.startswith("sft/perception-100-1") and "70%" in why
    # A reads better but writes no analysis ("unknown", empty advice): the copilot is the best reader that writes one
    (tmp_path / "metrics/eval/A_zeroshot.json").write_text(json.dumps({
        "value_accuracy": {"value": 0.8}, "analysis": {"economy_assessment": {"value": 0.0},
                                                       "round_importance": {"value": 0.0}}}))
    assert best_built_model()[0] == PARAMS["perception"]["out"]  # no model writes an analysis: the best reader
    (tmp_path / "metrics/eval/sft/perception-100-1.json").write_text(json.dumps({
        "value_accuracy": {"value": 0.7}, "analysis": {"economy_assessment": {"value": 0.5},
                                                       "round_importance": {"value": 0.3}}}))
    path, why = best_built_model()
    assert path == b_seed_1 and "economy + importance 40%" in why and "A_zeroshot (80%)" in why


def test_analyze_names_a_bad_image_before_it_loads_any_model(tmp_path, monkeypatch):
    """An unreadable file is refused with its name and the problem, once, and no model is looked for: the
    directory has no params.yaml and no model, so reaching either would fail differently."""
    from typer.testing import CliRunner

    from chimera.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "shot.png").write_bytes(b"not a png")
    (tmp_path / "empty.png").write_bytes(b"")
    for name, problem in (("shot.png", "UnidentifiedImageError"), ("empty.png", "empty file")):
        result = CliRunner().invoke(app, ["analyze", name, "--model", "models/none"])
        assert result.exit_code == 1, result.output
        assert f"{name}: unreadable image:" in result.output and problem in result.output
        assert result.output.count(name) == 1 and "Loading" not in result.output


def test_the_command_names_bad_input_in_one_line_and_has_every_command(tmp_path):
    """`python -m chimera.cli` (what the `chimera` script runs) knows every command, and a malformed prediction
    file is one line naming it, not a traceback; CHIMERA_DEBUG=1 gives the traceback back."""
    import os
    import subprocess

    run = lambda *args, **env: subprocess.run([sys.executable, "-m", "chimera.cli", *args], cwd=tmp_path,  # noqa: E731
                                              capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    listed = run("--help").stdout
    assert all(command in listed for command in ("analyze", "review", "serve", "watch", "gsi-label"))
    (tmp_path / "preds").mkdir()
    (tmp_path / "preds" / "x.json").write_text('{"broken')
    result = run("evaluate", "--predictions", "preds", "--labels", "preds")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: preds/x.json: not valid JSON" in result.stderr and len(result.stderr.splitlines()) == 2
    result = run("evaluate", "--predictions", "preds", "--labels", "preds", CHIMERA_DEBUG="1")
    assert result.returncode == 1 and "Traceback" in result.stderr and "not valid JSON" in result.stderr
