"""End to end: the whole DVC pipeline on a copy of the project with small params (a reduced grid), offline; the
report's numbers against the per-frame tables; then a no-op repro; then DVC as a teammate uses it: push, a fresh
clone with no ../shared beside it, pull, status clean, repro does nothing; then a smaller grid as `dvc exp run`.

Slow (minutes): every stage runs as its own process, as `make repro` runs it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

SMALL_PARAMS = {
    ("synthetic", "n_frames"): 36,
    ("video", "synthetic_clip", "seconds"): 4,
    ("split", "train"): 16, ("split", "val"): 4, ("split", "eval"): 8,
    ("pretrain_strategy", "max_steps"): 3, ("pretrain_strategy", "max_examples"): 24,
    ("pretrain_strategy", "batch_size"): 4, ("pretrain_strategy", "rehearsal_frames"): 8,  # the rehearsal path runs
    ("sft", "batch_size"): 2,
    # a reduced grid: two shot counts, every arm, one seed; the named models are its points
    ("sweep", "shots"): [3, 6], ("sweep", "seeds"): [0], ("sweep", "equal"): "steps", ("sweep", "steps"): 2,
    ("sweep", "named"): {"B": {"arm": "perception", "shots": 6}, "C": {"arm": "pretrain_strategy", "shots": 6},
                         "D": {"arm": "pretrain_strategy", "shots": 3}, "control": {"arm": "pretrain_control", "shots": 6}},
    ("grpo", "shots"): 6, ("report", "hybrid_with"): "sft/perception-6-0",
    ("report", "comparisons"): [["sft/perception-6-0", "A_zeroshot"], ["grpo/perception-6-0", "sft/perception-6-0"]],
    ("grpo", "max_steps"): 1, ("grpo", "examples"): 4, ("grpo", "batch_size"): 2, ("grpo", "num_generations"): 2,
    ("grpo", "max_completion_length"): 16, ("grpo", "constrained"): False,
    ("infer", "max_new_tokens"): 24,
    ("perception", "n_frames"): 12, ("perception", "n_val"): 4, ("perception", "max_steps"): 4,
    ("perception", "reading"): [{"steps": 1, "tasks": {"money": ["player_money"]}},
                                {"steps": 1, "tasks": {"money": ["player_money"], "vitals": ["player_health"]},
                                 "rare_share": 0.5}],
    ("perception", "batch_size"): 4, ("perception", "eval_every"): 2, ("perception", "research_prompt_every"): 2,
    # models this barely trained fill every string to the decoding schema's bound when constrained (minutes per
    # model): the pipeline decodes and samples (GRPO) unconstrained here; tests/test_constrained.py and
    # tests/test_training.py run the constrained decoder on the tiny model
    ("infer", "constrained"): False,
    # the nested win-probability selection, shrunk: the stage's path runs, not its 90 s of fits
    ("winprob", "feature_sets"): ["plain", "player"], ("winprob", "models"): ["logreg"],
    ("winprob", "calibrations"): ["none"], ("winprob", "logreg_C"): [1.0], ("winprob", "outer_folds"): 3,
    ("winprob", "inner_folds"): 2, ("winprob", "bootstrap"): 50,
}


def check_report_against_frames(repo: Path, report: dict) -> None:
    """The report's research answer, E against its SFT cell and the grid means, recomputed from the per-frame tables
    they were computed from."""
    import pandas as pd

    def table(key):
        return pd.read_csv(repo / "plots" / "eval" / key / "frames.csv").set_index("id")

    c_minus_b = (table("sft/pretrain_strategy-6-0").value_accuracy - table("sft/perception-6-0").value_accuracy).dropna()
    assert report["research"]["C_vs_B"]["delta"] == pytest.approx(c_minus_b.mean())
    assert report["research"]["C_vs_B"]["per_seed"] == pytest.approx([c_minus_b.mean()])
    e_minus_sft = (table("grpo/perception-6-0").value_accuracy - table("sft/perception-6-0").value_accuracy).dropna()
    assert report["e_vs_sft"]["perception"]["value_accuracy"]["delta"] == pytest.approx(e_minus_sft.mean())
    for row in report["grid"]["summary"]:
        (key,) = row["models"]
        assert row["value_accuracy"]["value"] == pytest.approx(table(key).value_accuracy.mean()), key
        assert report["rows"][key]["value_accuracy"]["value"] == pytest.approx(table(key).value_accuracy.mean()), key


def copy_project(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\n")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(src.read_bytes())


@pytest.mark.slow
def test_dvc_repro_runs_every_stage_offline_and_a_second_repro_is_a_noop(tmp_path, shared):
    work = tmp_path / "work"
    repo = work / "chimera"
    repo.mkdir(parents=True)
    (work / "shared").symlink_to(shared)  # params say ../shared, as in a real checkout
    copy_project(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for keys, value in SMALL_PARAMS.items():
        node = params
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "ANTHROPIC_API_KEY": ""}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env)
    (repo / "dvc.lock").unlink(missing_ok=True)

    dvc = [sys.executable, "-m", "dvc"]

    def run(*args, cwd=repo):
        done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, " ".join(args) + "\n" + done.stdout[-4000:] + done.stderr[-4000:]
        return done.stdout + done.stderr

    run(*dvc, "update", "-q", *[str(p.relative_to(repo)) for p in sorted((repo / "data" / "raw").glob("*.dvc"))])
    run(*dvc, "repro")

    report = json.loads((repo / "metrics" / "report.json").read_text())
    grid = {f"sft/{arm}-{shots}-0" for arm in ("perception", "pretrain_strategy", "pretrain_control") for shots in (3, 6)}
    e = {"grpo/perception-6-0", "grpo/pretrain_strategy-6-0"}
    models = {"A_zeroshot"} | grid | e
    assert set(report["rows"]) == models | {"constant", "ocr", "hybrid"}
    # the eval split: its 8 rendered frames, then every real screenshot a person read (outside the split sizes);
    # a frame is scored where its label has a value: the hidden-HUD frames are in null handling alone
    import pandas as pd

    splits = pd.read_parquet(repo / "data" / "labeled" / "splits.parquet")
    real = splits[splits.source == "real"]
    assert len(real) == 13 and set(real.split) == {"eval"} and (splits.split == "eval").sum() == 8 + len(real)
    labels = {i: json.loads((repo / "data" / "labeled" / "labels" / f"{i}.json").read_text()) for i in real.id}
    read = [i for i, r in labels.items() if any(r["analysis"]["game_state"][f] is not None for f in r["known_fields"])]
    assert all(r["labeler"] == "person" for r in labels.values()) and len(read) == 10
    assert report["research"]["C_vs_control"]["n"] == 8 + len(read) and "margin" in report["research"]["D_vs_B"]
    assert report["grid"]["slices"]["B"]["real"]["n"] == len(read)  # the frames with a value to score
    check_report_against_frames(repo, report)
    review = (repo / "reports" / "review.html").read_text()
    assert set(report["grpo"]) == e and report["grpo"]["grpo/perception-6-0"]["label"] == "E after B"
    shown = {"A_zeroshot", *e, "sft/perception-6-0", "sft/pretrain_strategy-6-0", "sft/pretrain_strategy-3-0"}
    assert "Content-Security-Policy" in review and all(f'"{m}"' in review for m in shown)
    export = json.loads((repo / "metrics" / "export.json").read_text())
    assert export["model"] in models and (repo / "models" / "export" / "README.md").exists()
    assert all(m["n_frames"] == 8 + len(real) for m in report["rows"].values())
    assert all("margin_over_constant" in report["rows"][m] for m in models)
    assert set(report["models_beating_constant"]) | set(report["models_not_beating_constant"]) == models
    assert (repo / "metrics" / "report.md").read_text().split("\n")[0].startswith(("**", "Every model"))
    assert (repo / "plots" / "comparison.png").stat().st_size > 10_000
    assert (repo / "plots" / "data_efficiency.png").stat().st_size > 10_000
    assert (repo / "models" / "sft" / "pretrain_strategy-6-0" / "final_model" / "merged_16bit" / "config.json").exists()
    assert (repo / "dvclive" / "sft" / "perception-6-0" / "metrics.json").exists()
    assert json.loads((repo / "metrics" / "train" / "sft" / "perception-6-0.json").read_text())["final_val_loss"] is not None
    # each arm's base at the seed: vision-only starts from the perceiving base itself (its folder a redirect), the
    # pretrained arms from their own pretraining; the report quotes each pretraining's val loss from its metrics
    redirect = json.loads((repo / "models" / "arms" / "perception-0" / "chimera_base.json").read_text())
    assert redirect["name"] == "models/perception"
    for arm, base in (("perception", "models/perception"),
                      ("pretrain_strategy", "models/arms/pretrain_strategy-0/final_model/merged_16bit")):
        assert json.loads((repo / "metrics" / "train" / "sft" / f"{arm}-6-0.json").read_text())["base"] == base
    for arm, losses in report["grid"]["pretraining"].items():
        assert losses == [json.loads((repo / "metrics" / "arms" / f"{arm}-0.json").read_text())["final_val_loss"]]
    pre = report["grid"]["pretraining"]
    assert pre["pretrain_strategy"][0] < pre["perception"][0]  # three steps on the text move its val loss down
    winprob = json.loads((repo / "metrics" / "winprob.json").read_text())
    assert winprob["beats_baseline"]
    floor = winprob["ece_floor"]["overall"]  # the ECE target beside what a perfectly calibrated model scores here
    assert floor["rounds"] <= floor["rows"] == winprob["snapshots"] and 0 < floor["mean"] < 0.5
    assert f"would show ECE {floor['mean']:.3f} on average" in (repo / "metrics" / "report.md").read_text()
    import pandas as pd

    manifest = pd.read_parquet(repo / "data" / "frames" / "synthetic.parquet")
    for row in manifest.itertuples():  # each frame names, per labelled field, the drawn elements that show it
        meta, truth = json.loads(row.meta), json.loads(row.truth)
        assert {f for f, v in truth.items() if v is not None} == set(meta["elements"])
        assert all(k in meta["boxes"] for keys in meta["elements"].values() for k in keys)
    assert "up to date" in run(*dvc, "status")
    shown = run(*dvc, "metrics", "show", "--json")
    assert "report.json" in shown and "winprob.json" in shown and "perception-6-0" in shown

    # a teammate: the repository and the remote, no ../shared
    remote = tmp_path / "remote"
    run(*dvc, "remote", "modify", "team", "url", str(remote))
    run("git", "add", "-A")
    run("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "pipeline run")
    run(*dvc, "push", "-q")
    clone = tmp_path / "elsewhere" / "chimera"
    clone.parent.mkdir()
    run("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    assert not (clone.parent / "shared").exists() and not (clone / "data" / "raw" / "screenshots").exists()
    run(*dvc, "pull", "-q", cwd=clone)
    assert (clone / "data" / "raw" / "screenshots" / "manifest.csv").exists()
    assert "up to date" in run(*dvc, "status", cwd=clone)
    assert "Running stage" not in run(*dvc, "repro", cwd=clone)

    # a reduced grid as an experiment: the 3-shot cells leave the pipeline, nothing is retrained, the metrics list it
    out = run(*dvc, "exp", "run", "-S", "sweep.shots=[6]", "-n", "six-shots")
    assert "Running stage 'sft@" not in out and "Running stage 'report'" in out
    shown = run(*dvc, "exp", "show", "--json")
    assert "six-shots" in shown and "value_accuracy" in shown
    reduced = json.loads((repo / "metrics" / "report.json").read_text())
    assert not any("-3-" in row for row in reduced["rows"]) and reduced["research"] == {}  # D is not in this grid
