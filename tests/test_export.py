"""`chimera export`: the tiny model leaves the pipeline and comes back through the same loader with identical
answers; its card carries the metrics the evaluation computed for it; GGUF and Hub upload fail clearly when absent."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
from typer.testing import CliRunner

from chimera.cli import app
from chimera.evaluation.metrics import evaluate, frame_rows
from chimera.evaluation.report import build_report
from chimera.export import (LLAMA_CPP_HELP, ExportError, convert_gguf, copilot_choice, export_model, lineage_of,
                            push_to_hub)
from chimera.labeling.truth import truth_label
from chimera.screens.hud import Style, extras_dict, png_bytes, render_frame, sample_state
from chimera.vlm.backends import LocalBackend
from chimera.vlm.models import ModelConfig, build_tiny_model, load_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


def frames(folder, n=3):
    out, labels = [], {}
    for seed in range(n):
        state, extras = sample_state(random.Random(100 + seed))
        image, _ = render_frame(state, extras, Style(width=320, height=180, seed=seed))
        path = folder / f"f{seed}.png"
        path.write_bytes(png_bytes(image))
        out.append((f"f{seed}", str(path)))
        labels[f"f{seed}"] = truth_label(f"f{seed}", state.model_dump_json(), extras_dict(extras))
    return out, labels


def answers(model_dir, images):
    model, processor = load_model(ModelConfig(name=str(model_dir)))
    backend = LocalBackend(model, processor, "t", batch_size=2, max_new_tokens=24, constrained=False)
    return backend.analyze(images)


def test_export_round_trips_through_the_pipelines_loader_with_identical_answers(tiny, tmp_path):
    import torch

    images, _ = frames(tmp_path)
    out = export_model(tiny, tmp_path / "export")
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    before, after = answers(tiny, images), answers(out, images)
    assert [p.raw_text for p in after] == [p.raw_text for p in before]
    a, _ = load_model(ModelConfig(name=str(tiny)))
    b, _ = load_model(ModelConfig(name=str(out)))
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_model_card_carries_the_metrics_the_evaluation_computed(tiny, tmp_path, monkeypatch):
    images, labels = frames(tmp_path)
    predictions = {p.id: p.record("tiny") for p in answers(tiny, images)}
    summary, scores = evaluate(predictions, labels)
    table = pd.DataFrame(frame_rows(scores)).set_index("id")
    report = build_report({"tiny": summary}, {"tiny": table}, [])
    (tmp_path / "report.json").write_text(json.dumps(report))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["export", str(tiny), "--out", str(tmp_path / "exp"), "--report",
                                      str(tmp_path / "report.json")])
    assert result.exit_code == 0, result.output
    card = (tmp_path / "exp" / "README.md").read_text()
    va = report["rows"]["tiny"]["value_accuracy"]
    assert f"{100 * va['value']:.1f}%" in card and f"{100 * va['ci95'][0]:.1f}%" in card
    analysis = report["rows"]["tiny"]["analysis_accuracy"]  # a copilot's card says how its analysis scored too
    assert (f"| economy + importance accuracy | {100 * analysis['value']:.1f}% [{100 * analysis['ci95'][0]:.1f}%, "
            f"{100 * analysis['ci95'][1]:.1f}%]") in card
    assert f"{len(images)} frames" in card and "git revision" in card and "Intended use" in card


def test_lineage_names_the_run_that_made_the_model(tmp_path):
    params = {"seed": 0, "model": {"name": "tiny"}, "infer": {"models": {"A_zeroshot": {"path": "models/perception"}}},
              "sweep": {"shots": [20, 100], "arms": ["perception", "pretrain_strategy"], "seeds": [0, 1]},
              "grpo": {"arms": ["perception"], "shots": 100, "seeds": [0]}}
    name, lineage = lineage_of("models/sft/pretrain_strategy-20-1/final_model/merged_16bit", params)
    assert name == "sft/pretrain_strategy-20-1" and lineage["shots"] == 20 and lineage["seed"] == 1
    assert lineage["arm"] == "strategy-pretrained" and lineage["base"] == "models/arms/pretrain_strategy-1"
    assert lineage_of("models/perception", params) == ("A_zeroshot", {
        "base": "models/perception", "shots": 0, "arm": "zero-shot", "seed": 0, "base model": "tiny"})
    name, lineage = lineage_of("models/grpo/perception-100-0/final_model/merged_16bit", params)  # E after B
    assert name == "grpo/perception-100-0" and lineage["training"] == "GRPO"
    assert lineage["base"] == "models/sft/perception-100-0/final_model/merged_16bit"
    assert lineage_of("elsewhere", params)[1]["note"].startswith("not a model")


def test_a_cells_shots_are_nested_and_never_more_than_the_train_split():
    """SFT's shots and E's prompts come from cell_shots: a seed's 20 are the head of its 100."""
    import pandas as pd

    from chimera.grid import cell_shots

    splits = pd.DataFrame({"id": [f"f{i}" for i in range(130)], "split": ["train"] * 100 + ["eval"] * 30})
    twenty, hundred = cell_shots(splits, 20, seed=1), cell_shots(splits, 100, seed=1)
    assert list(twenty.id) == list(hundred.id[:20]) and set(hundred.id) == {f"f{i}" for i in range(100)}
    assert list(cell_shots(splits, 20, seed=2).id) != list(twenty.id)  # another seed, another draw
    with pytest.raises(ValueError, match="101 shots asked, the train split has 100"):
        cell_shots(splits, 101, seed=0)


def test_gguf_and_push_fail_clearly_when_unavailable(tiny, tmp_path, monkeypatch):
    monkeypatch.delenv("LLAMA_CPP_DIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no convert_hf_to_gguf.py anywhere
    with pytest.raises(ExportError) as err:
        convert_gguf(tiny, "q4_k_m")
    assert str(err.value) == LLAMA_CPP_HELP and "LLAMA_CPP_DIR" in str(err.value)
    with pytest.raises(ExportError, match="not a known type"):
        convert_gguf(tiny, "q3_weird")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: an offline machine, answered at once
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    with pytest.raises(ExportError, match="could not reach the Hub|the Hub refused"):
        push_to_hub(tiny, "someone/chimera-test")


def test_the_copilot_is_the_best_reader_that_writes_an_analysis():
    """A reads best but answers "unknown" with empty advice: the copilot is the best reader among the models that get
    economy or importance right on some frame, and it says who read better; a tie keeps the earlier model."""
    scores = {"A_zeroshot": (0.69, 0.0), "sft/perception-20-0": (0.67, 0.0), "sft/perception-100-0": (0.67, 0.39),
              "grpo/perception-100-0": (0.68, 0.32)}
    best, why = copilot_choice(scores)
    assert best == "grpo/perception-100-0" and "economy + importance 32%" in why and "A_zeroshot (69%)" in why
    assert "sft/perception-20-0" not in why  # it reads worse than the choice: not a better reader left out
    assert copilot_choice({"A_zeroshot": (0.69, 0.0), "ocr-like": (0.2, 0.0)})[0] == "A_zeroshot"
    assert "none writes an analysis" in copilot_choice({"A_zeroshot": (0.69, 0.0)})[1]
    assert copilot_choice({"sft/a": (0.6, 0.3), "sft/b": (0.6, 0.4)})[0] == "sft/a"
