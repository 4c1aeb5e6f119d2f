"""The DVC graph cannot go stale: every stage declares what its script reads (derived from the code)."""

import dataclasses

import pytest

from dvc_graph import ROOT, declared_stages, params_read, script_reads, undeclared

STAGES = declared_stages()


@pytest.mark.parametrize("stage", STAGES, ids=[s.name for s in STAGES])
def test_stage_declares_everything_its_script_reads(stage):
    assert undeclared(stage.script, stage.deps, stage.outs, stage.params, stage.argv) == []


def test_every_stage_script_is_in_the_graph():
    scripts = {s.script.name for s in STAGES}
    on_disk = {p.name for p in (ROOT / "stages").glob("*.py") if not p.name.startswith("_")}
    assert on_disk == scripts


def test_a_deleted_dep_is_caught():
    """The check fails when a stage's deps entry is removed: a module, a data folder, a params key."""
    infer = next(s for s in STAGES if s.name == "infer_sft@100-perception-0")
    for removed in ("chimera/vlm", "data/labeled/splits.parquet", "stages/_common.py"):
        broken = dataclasses.replace(infer, deps=infer.deps - {removed})
        assert undeclared(broken.script, broken.deps, broken.outs, broken.params, broken.argv), removed
    broken = dataclasses.replace(infer, params=infer.params - {"infer.max_new_tokens"})
    assert "params infer.max_new_tokens" in undeclared(broken.script, broken.deps, broken.outs, broken.params,
                                                       broken.argv)


def test_reads_are_derived_from_code():
    import ast

    tree = ast.parse('p, q = params("infer"), params("model")\nx = p["batch_size"]\ny = params()["seed"]\n'
                     'z = q.get("max_pixels")\nw = params("sft")["runs"][name]["shots"]\n')
    assert params_read(tree) == {"infer.batch_size", "seed", "model.max_pixels", "sft.runs.*"}
    reads = script_reads(ROOT / "stages" / "evaluate.py")
    assert "chimera/evaluation/metrics.py" in reads.code and "chimera/schema.py" in reads.code  # transitive
    assert "models/winprob_screen.joblib" in reads.paths


def test_every_cell_starts_from_its_own_arms_pretraining_at_its_own_seed():
    """The grid's seeds cover the pretraining: each SFT cell depends on the pretrain stage of its arm and seed, and
    that stage runs its arm at that seed (so two seeds are two pretrainings, not one shared)."""
    from chimera.grid import arm_folder

    by_out = {out: s for s in STAGES for out in s.outs}
    cells = [s for s in STAGES if s.name.startswith("sft@")]
    assert cells
    for cell in cells:
        arm, seed = cell.argv[0], int(cell.argv[2])
        maker = by_out[arm_folder(arm, seed)]
        assert arm_folder(arm, seed) in cell.deps and maker.argv == [arm, str(seed)], cell.name
    seeds = {int(s.argv[1]) for s in STAGES if s.name.startswith("pretrain@")}
    assert seeds == {int(c.argv[2]) for c in cells} and len(seeds) > 1


def test_the_lock_records_exactly_the_stages_of_the_graph():
    """dvc.lock keeps a removed stage's entry until someone deletes it (DVC does not prune it; `pretrain_strategy` and
    `pretrain_control` outlived their stages by a commit), and an added stage that never ran has none: either way the
    committed results are not the graph's."""
    import yaml

    locked = set(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"])
    assert locked == {s.name.split(":")[-1] for s in STAGES}
