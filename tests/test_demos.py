import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from chimera.demos.awpy_adapter import load_dem
from chimera.demos.canonical import DemoError
from chimera.demos.cs2df import decode_series, load_cs2df
from chimera.demos.snapshots import build_snapshots, moment_ticks, validate_snapshots, xvx_states
from chimera.demos.strategy_dataset import build_examples, split_by_match, wilson, xvx_table
from chimera.demos.winprob import grouped_folds
from chimera.schema import Analysis, GameState, parse_model_output, to_json

INFERNO = "sample-2026-02-09_de_inferno_Team_Vitality_13-8_FURIA.zip"


@pytest.fixture(scope="module")
def inferno(shared):
    return load_cs2df(shared / "data/cs2-parsed-matches" / INFERNO)


@pytest.mark.parametrize("name", ["14065", "14132", "14155", "14160"])
def test_awpy_adapter_parses_valid_demos(shared, name):
    match = load_dem(shared / f"data/cs2-demos/demofile-net_{name}.dem")
    assert len(match.frames) > 0
    assert set(match.frames.side) <= {"CT", "T"}
    assert match.frames.health.between(0, 100).all()
    assert match.map_name.startswith(("de_", "cs_"))


@pytest.mark.parametrize("name", ["14011", "14090", "14150_ag2"])
def test_awpy_adapter_gives_a_clear_error_for_broken_demos(shared, name):
    with pytest.raises(DemoError, match=f"demofile-net_{name}.dem: awpy cannot parse"):
        load_dem(shared / f"data/cs2-demos/demofile-net_{name}.dem")


def test_bad_files_name_the_file(tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DemoError, match="broken.zip: not a readable zip"):
        load_cs2df(bad)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"schemaVersion": "cs2-demo-format/3.0"}))
    with pytest.raises(DemoError, match="match.json missing"):
        load_cs2df(empty)
    with pytest.raises(DemoError, match="no such file"):
        load_dem(tmp_path / "missing.dem")


def test_delta_decoding():
    series = decode_series({"playerIndex": 0, "x": [-1676, 1, 3], "hp": [100, 90, 90], "money": [100, 0, -50],
                            "flags": [5, 5, 0]})
    assert series["x"].tolist() == [-1676, -1675, -1672]
    assert series["money"].tolist() == [100, 100, 50]
    assert series["hp"].tolist() == [100, 90, 90]  # plain, not delta


def test_cs2df_decoder_reproduces_known_values(inferno):
    f = inferno.frames
    first = f[(f.round_num == 1) & (f.player_id == 0)].sort_values("tick")
    row = first.iloc[0]
    assert (row.tick, row.x, row.y, row.z, row.health, row.money, row.equip_value) == (1275, -1676, 352, -64, 100, 100, 900)
    assert (row.side, row.place, row.weapon_secondary) == ("T", "TSpawn", "Glock-18")
    assert list(row.utility) == ["Smoke Grenade", "Flashbang"]
    assert (first.iloc[1].x, first.iloc[1].y) == (-1675, 344)
    assert len(inferno.rounds) == 21
    assert inferno.rounds.iloc[0].winner_side == "T" and inferno.rounds.iloc[1].end_reason == "target_bombed"
    # flags: bit0 alive, bit2 kit -> CTs with kits exist, Ts never have one
    assert not f[f.side == "T"].has_kit.any() and f[f.side == "CT"].has_kit.any()


def test_round_with_known_plant_and_first_contact_yields_exactly_those_moments(inferno):
    round1 = inferno.rounds.iloc[0]
    # round 1: freeze end 1275, first enemy damage at 5369 (glock, T -> CT), plant on A at 7062
    assert moment_ticks(inferno, round1, None) == [("pre_round", 1275), ("first_contact", 5369), ("post_plant", 7062)]
    snaps = build_snapshots(inferno, sample_every_s=None)
    r1 = snaps[snaps.round_num == 1]
    assert r1.moment.tolist() == ["pre_round", "first_contact", "post_plant"]
    post = r1[r1.moment == "post_plant"].iloc[0]
    assert (post.bomb_status, post.bomb_site, post.winner_side) == ("planted", "A", "T")
    assert post.time_left_s == 40.0
    pre = r1[r1.moment == "pre_round"].iloc[0]
    assert (pre.ct_alive, pre.t_alive, pre.ct_health) == (5, 5, 500)
    validate_snapshots(snaps, min_rows=21)


def test_sampler_adds_moments_every_n_seconds(inferno):
    round1 = inferno.rounds.iloc[0]
    sampled = [t for m, t in moment_ticks(inferno, round1, 20.0) if m == "sampled"]
    assert sampled[:2] == [1275 + 20 * 64, 1275 + 40 * 64]
    assert all(t < round1.end_tick for t in sampled)


def test_validate_snapshots_fails_loudly():
    bad = pd.DataFrame([{"ct_alive": 6, "t_alive": 5, "ct_health": 0, "t_health": 0, "moment": "pre_round",
                         "ct_win": 1, "match_id": "m", "round_num": 1, "tick": 1}])
    with pytest.raises(ValueError, match="ct_alive outside 0-5"):
        validate_snapshots(bad)
    with pytest.raises(ValueError, match="expected at least 5"):
        validate_snapshots(bad.iloc[:0], min_rows=5)


def _synthetic_snapshots(n_matches=6, rounds=30, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(n_matches):
        for r in range(rounds):
            ct, t = rng.integers(1, 6, size=2)
            rows.append({"match_id": f"m{m}", "map_name": f"de_map{m % 3}", "round_num": r, "moment": "sampled",
                         "tick": r, "time_left_s": 60.0, "ct_score": 0, "t_score": 0, "bomb_status": "carried",
                         "bomb_site": None, "ct_alive": ct, "t_alive": t, "ct_health": ct * 100, "t_health": t * 100,
                         "ct_armor": 0, "t_armor": 0, "ct_money": 0, "t_money": 0, "ct_equip": 4000 * ct,
                         "t_equip": 4000 * t, "ct_rifles": 0, "t_rifles": 0, "ct_snipers": 0, "t_snipers": 0,
                         "ct_smgs": 0, "t_smgs": 0, "ct_weapons": [], "t_weapons": [], "ct_utility": [],
                         "t_utility": [], "ct_utility_count": 0, "t_utility_count": 0, "ct_kits": 0, "t_kits": 0,
                         "winner_side": "CT" if rng.random() < 1 / (1 + np.exp(-(ct - t))) else "T",
                         "end_reason": "x"})
            rows[-1]["ct_win"] = int(rows[-1]["winner_side"] == "CT")
    return pd.DataFrame(rows)


def test_grouped_folds_never_share_a_match():
    snaps = _synthetic_snapshots()
    for train, test in grouped_folds(snaps.match_id, 5):
        assert not set(snaps.match_id.iloc[train]) & set(snaps.match_id.iloc[test])
    with pytest.raises(ValueError, match="at least 2 matches"):
        grouped_folds(pd.Series(["only"] * 10), 5)


def test_strategy_examples_are_grounded_and_split_by_match():
    snaps = _synthetic_snapshots()
    snaps["p_ct_win"] = 0.5
    examples = build_examples(snaps)
    assert set(examples.side) == {"CT", "T"}
    train, val, balance = split_by_match(examples, 0.34, seed=0)
    assert not set(train.match_id) & set(val.match_id)
    assert balance["side"] < 0.05
    first = json.loads(examples.iloc[0].completion)
    # the analysis and advice are valid schema sections
    obj = {"game_state": {}, "analysis": first["analysis"], "advice": first["advice"]}
    assert parse_model_output(json.dumps(obj)).ok
    row = snaps.iloc[0]
    assert f"{row.ct_alive}v{row.t_alive}" in first["analysis"]["situation_summary"]
    # the state as the screenshot answer writes it, read from the snapshot: what the CT side's HUD shows
    state = GameState.model_validate_json(examples.iloc[0].game_state)
    assert examples.iloc[0].side == "CT"
    assert (state.player_side, state.alive_teammates, state.alive_enemies) == ("CT", row.ct_alive - 1, row.t_alive)
    # pretraining continues the answer after its game_state: together they are the screenshot answer's own text
    answer = '{"game_state":' + examples.iloc[0].game_state + "," + examples.iloc[0].completion[1:]
    parsed = json.loads(answer)
    head = to_json(Analysis.model_validate({k: parsed[k] for k in ("game_state", "analysis", "advice")}))
    assert answer.startswith(head[:-1] + ',"outcome":{')


def test_xvx_table_with_wilson_intervals(inferno):
    states = xvx_states(inferno)
    table = {row["state"]: row for row in xvx_table(states)}
    assert table["5v5"]["rounds"] == 21  # every round starts 5v5
    lo, hi = wilson(5, 10)
    assert lo < 0.5 < hi and round(lo, 3) == 0.237 and round(hi, 3) == 0.763
    for row in table.values():
        assert row["ci95_low"] <= row["ct_win_rate"] <= row["ci95_high"]


def test_control_targets_keep_the_text_and_break_the_pairing():
    from collections import Counter

    from chimera.demos.strategy_dataset import control_targets

    completions = [f"target {i % 7}" for i in range(50)]
    moved = control_targets(completions, seed=0)
    assert Counter(moved) == Counter(completions)  # the same text, token for token
    assert sum(a == b for a, b in zip(moved, completions)) < 15  # pairs broken (equal texts may land home by chance)
    unique = [f"t{i}" for i in range(30)]
    assert all(a != b for a, b in zip(control_targets(unique, 1), unique))  # a derangement
    assert control_targets(unique, 1) == control_targets(unique, 1) != control_targets(unique, 2)
