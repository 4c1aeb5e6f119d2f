"""Win probability: nested match-grouped selection, the buy-time rule, the screenshot view, partial states."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from chimera.cli import app
from chimera.demos.cs2df import load_cs2df
from chimera.demos.snapshots import build_snapshots
from chimera.demos.winprob import (BUY_MOMENT, Candidate, WinProbConfig, candidate_grid, ece_floor, grouped_folds, nested_cv,
                                   p_side_wins, p_side_wins_many, predict_ct_win, round_weights, score, screen_rows, select,
                                   team_features, train_screen_view, train_team_view)
from chimera.io import save_joblib
from chimera.schema import GameState, example_analysis

SMALL = WinProbConfig(feature_sets=("plain", "player"), kinds=("logreg",), calibrations=("none", "sigmoid"),
                      logreg_C=(1.0,), outer_folds=3, inner_folds=2, calibration_folds=2, bootstrap=50)


def synthetic_snapshots(n_matches=6, rounds=24, seed=0) -> pd.DataFrame:
    """Snapshots whose outcome follows the alive difference; each team's players listed as the stage writes them."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(n_matches):
        for r in range(rounds):
            for moment in ("pre_round", "sampled", "sampled"):
                ct, t = (5, 5) if moment == "pre_round" else rng.integers(1, 6, size=2)
                ct_res, t_res = rng.integers(5, 30, size=2) * 1000
                edge = (ct - t) + (ct_res - t_res) / 10000
                won = rng.random() < 1 / (1 + np.exp(-edge))
                players = {f"{s}_player_{k}": [v] * n for s, n in (("ct", ct), ("t", t))
                           for k, v in (("health", 100), ("armor", 100), ("money", 800))}
                rows.append({"match_id": f"m{m}", "map_name": "de_x", "round_num": r, "moment": moment,
                             "tick": len(rows), "time_left_s": 60.0, "ct_score": 0, "t_score": 0,
                             "bomb_status": "carried", "ct_alive": ct, "t_alive": t, "ct_health": 100 * ct,
                             "t_health": 100 * t, "ct_armor": 0, "t_armor": 0, "ct_money": ct_res // 2,
                             "t_money": t_res // 2, "ct_equip": ct_res // 2, "t_equip": t_res // 2,
                             "ct_player_weapon": ["AK-47"] * ct, "t_player_weapon": ["AK-47"] * t, **players,
                             "winner_side": "CT" if won else "T", "ct_win": int(won)})
    return pd.DataFrame(rows)


def test_nested_selection_never_scores_a_match_it_chose_or_calibrated_on():
    snaps = synthetic_snapshots()
    X, y, w, groups = team_features(snaps), snaps.ct_win.to_numpy(), round_weights(snaps), snaps.match_id
    candidates = candidate_grid(SMALL.feature_sets, SMALL.kinds, SMALL.calibrations, SMALL.logreg_C)
    result = nested_cv(X, y, w, groups, candidates, {"plain_logreg": Candidate("plain", "logreg")}, SMALL)
    assert len(result.audit) == 3 and len(result.folds) == 3
    for fold in result.audit:
        assert not fold["outer_train"] & fold["outer_test"]
        # inner selection (2 folds x 4 candidates) and calibration (2 folds per calibrated fit) all happened here
        assert len(fold["splits"]) >= 2 * 4
        for train, test in fold["splits"]:
            assert not train & test
            assert not (train | test) & fold["outer_test"], "an outer-test match was used inside its own selection"
    tested = set().union(*(f["outer_test"] for f in result.audit))
    assert tested == set(groups)  # every match is scored once, out of fold


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=2, max_size=60))
def test_score_equals_sklearns_metrics(rows):
    """The numpy score the bootstrap uses is sklearn's log loss, Brier and ROC AUC (ties included: probabilities
    on a coarse grid) and the binned ECE."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y = np.array([r[0] for r in rows])
    p = np.array([r[1] / 20 for r in rows])
    got, clipped = score(y, p), np.clip(p, 1e-6, 1 - 1e-6)
    assert got["log_loss"] == pytest.approx(log_loss(y, clipped, labels=[0, 1]), rel=1e-9)
    assert got["brier"] == pytest.approx(brier_score_loss(y, clipped), rel=1e-9, abs=1e-12)
    if len(set(y)) == 2:
        assert got["roc_auc"] == pytest.approx(roc_auc_score(y, clipped), rel=1e-9)
    else:
        assert np.isnan(got["roc_auc"])
    edges = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(clipped, edges[1:-1]), 0, 9)
    ece = sum((idx == b).mean() * abs(y[idx == b].mean() - clipped[idx == b].mean()) for b in range(10) if (idx == b).any())
    assert got["ece"] == pytest.approx(ece, abs=1e-12)


def test_ece_floor_draws_one_outcome_per_round():
    """At p = 0.5 everywhere the 10-bin ECE is |mean y - 0.5|. With R equal rounds sharing their outcome, mean y is
    Binomial(R, 1/2) / R, so the floor's mean is E|K/R - 1/2| exactly, however many rows a round has."""
    from math import comb

    R, rows_per_round = 10, 7
    rounds = np.repeat(np.arange(R), rows_per_round)
    floor = ece_floor(np.full(len(rounds), 0.5), rounds, target=0.04, n=4000, seed=1)
    exact = sum(comb(R, k) / 2 ** R * abs(k / R - 0.5) for k in range(R + 1))
    assert floor["rounds"] == R and floor["rows"] == R * rows_per_round
    assert floor["mean"] == pytest.approx(exact, abs=0.01)   # 0.123; one draw per row would give about 0.048
    assert floor["share_meeting_target"] == pytest.approx(comb(R, 5) / 2 ** R, abs=0.03)  # only K = 5 is within 0.04
    # the more rounds, the lower the floor: the same rows as their own rounds
    assert ece_floor(np.full(len(rounds), 0.5), np.arange(len(rounds)), 0.04, n=2000)["mean"] < floor["mean"] / 2


def test_selection_in_two_processes_chooses_and_scores_as_one():
    snaps = synthetic_snapshots()
    X, y, w, groups = team_features(snaps), snaps.ct_win.to_numpy(), round_weights(snaps), snaps.match_id
    candidates = candidate_grid(("plain", "player"), ("logreg",), ("none", "sigmoid"), (0.1, 1.0))
    audits = [], []
    one = select(candidates, X, y, w, groups, 3, 2, 0, audits[0], workers=1)
    two = select(candidates, X, y, w, groups, 3, 2, 0, audits[1], workers=2)
    assert one[0] == two[0] and one[1] == pytest.approx(two[1], rel=1e-12)
    calibrated = sum(c.calibration != "none" for c in candidates)
    assert audits[0] == audits[1] and len(audits[0]) == 3 * len(candidates) + 3 * 2 * calibrated  # inner + calibration


def test_team_view_beats_the_base_rate_and_reports_against_the_plain_baseline():
    snaps = synthetic_snapshots()
    model, metrics, oof = train_team_view(snaps, SMALL)
    assert metrics["chosen"]["log_loss"] < metrics["base_rate"]["log_loss"]
    assert metrics["chosen"]["roc_auc"] > 0.75
    assert {"chosen", "plain_logreg"} <= set(metrics["intervals"]["models"])
    low, high = metrics["intervals"]["minus_plain_logreg"]["chosen"]["log_loss"]
    assert low <= high
    assert [f["chosen"] for f in metrics["chosen_per_fold"]] and len(metrics["chosen_per_fold"]) == 3
    assert set(metrics["per_moment"]) >= {"pre_round", "sampled", BUY_MOMENT}
    assert oof.p_buy_time.notna().sum() == (snaps.moment == "pre_round").sum()
    strong = predict_ct_win(model, {"ct_alive": 5, "t_alive": 1, "ct_health": 500, "t_health": 100})
    weak = predict_ct_win(model, {"ct_alive": 1, "t_alive": 5, "ct_health": 100, "t_health": 500})
    assert strong > 0.8 > 0.2 > weak


def test_buy_time_answer_uses_only_what_is_known_before_the_buy():
    model, _, _ = train_team_view(synthetic_snapshots(), SMALL)
    state = {"moment": BUY_MOMENT, "ct_money": 10000, "ct_equip": 10000, "t_money": 8000, "t_equip": 4000,
             "ct_score": 3, "t_score": 5, "ct_alive": 5, "t_alive": 5, "ct_health": 500, "t_health": 500}
    p = predict_ct_win(model, state)
    # round-state facts do not move it: nobody has fought yet
    for change in ({"ct_alive": 1, "ct_health": 40}, {"time_left_s": 5.0}, {"bomb_status": "planted"}):
        assert predict_ct_win(model, {**state, **change}) == pytest.approx(p)
    # buying moves value from money to equipment: the same resources, the same answer
    assert predict_ct_win(model, {**state, "ct_money": 2000, "ct_equip": 18000}) == pytest.approx(p)
    # more resources do move it, the way the data says
    assert predict_ct_win(model, {**state, "ct_money": 20000}) > p
    # the live model, asked the same, answers differently (it sees the alive counts)
    assert predict_ct_win(model, {**state, "moment": "sampled", "ct_alive": 1}) < predict_ct_win(
        model, {**state, "moment": "sampled"})


def test_screen_rows_are_one_per_alive_player_with_that_players_outcome():
    snaps = synthetic_snapshots(n_matches=2, rounds=2)
    rows = screen_rows(snaps)  # every player
    assert len(rows) == int((snaps.ct_alive + snaps.t_alive).sum())
    first = snaps.iloc[0]
    mine = rows[rows.snapshot == 0]
    assert (mine.side == "CT").sum() == first.ct_alive and (mine.side == "T").sum() == first.t_alive
    assert (mine[mine.side == "CT"].won == first.ct_win).all() and (mine[mine.side == "T"].won == 1 - first.ct_win).all()
    assert (mine[mine.side == "T"].enemy_alive == first.ct_alive).all()
    assert set(rows.weapon_kind) == {"rifle"}


def test_screen_view_answers_for_a_screenshot_state_and_partial_ones():
    model, metrics = train_screen_view(synthetic_snapshots(), SMALL)
    assert metrics["chosen"]["log_loss"] < metrics["base_rate"]["log_loss"]
    up = GameState.model_validate({**example_analysis().game_state.model_dump(), "player_side": "CT",
                                   "alive_teammates": 4, "alive_enemies": 1})
    down = up.model_copy(update={"alive_teammates": 0, "alive_enemies": 5})
    assert p_side_wins(model, up) > 0.7 > 0.3 > p_side_wins(model, down)
    partial = up.model_copy(update={"player_health": None, "player_money": None, "player_armor": None})
    assert 0 < p_side_wins(model, partial) < 1
    # many screenshots in one prediction (the evaluate stage) answer as each alone, partial ones among them
    assert p_side_wins_many(model, [up, partial, down]) == [p_side_wins(model, s) for s in (up, partial, down)]
    assert p_side_wins_many(model, []) == []


def test_winprob_command_says_which_model_answered_and_what_it_assumed(tmp_path):
    snaps = synthetic_snapshots()
    team, _, _ = train_team_view(snaps, SMALL)
    screen, _ = train_screen_view(snaps, SMALL)
    save_joblib(team, tmp_path / "team.joblib")
    save_joblib(screen, tmp_path / "screen.joblib")
    run = lambda *args: CliRunner().invoke(app, ["winprob", "--model", str(tmp_path / "team.joblib"),  # noqa: E731
                                                 "--screen-model", str(tmp_path / "screen.joblib"), *args])
    p = lambda out: float(out.split(") = ")[1].split()[0])  # noqa: E731
    strong, weak = run("--ct-alive", "5", "--t-alive", "1"), run("--ct-alive", "1", "--t-alive", "5")
    assert strong.exit_code == 0 and "team-view model" in strong.output and "5v1" in strong.output
    assert p(strong.output) > 0.8 > 0.2 > p(weak.output)
    assert "assumed" in strong.output and "ct_equip" in strong.output  # equipment was not given
    partial = run("--ct-alive", "3")
    assert partial.exit_code == 0 and "t_alive" in partial.output.split("assumed")[1]
    assert "buy-time" in run("--buy-time", "--ct-money", "4000", "--t-money", "1000", "--ct-alive", "5",
                             "--t-alive", "5").output
    state = tmp_path / "state.json"
    data = example_analysis().model_dump(mode="json")
    data["game_state"].update(player_health=None, player_money=None)
    state.write_text(__import__("json").dumps(data))
    shot = run("--state", str(state))
    assert shot.exit_code == 0 and "screenshot-view model" in shot.output
    assert "own_health" in shot.output and "own_money" in shot.output
    state.write_text("{nope")
    bad = run("--state", str(state))
    assert bad.exit_code == 1 and "state.json" in bad.output
    missing = CliRunner().invoke(app, ["winprob", "--model", str(tmp_path / "none.joblib")])
    assert missing.exit_code == 1 and "dvc repro winprob" in missing.output


def test_snapshot_geometry_and_first_kill_come_from_the_frames(shared):
    match = load_cs2df(shared / "data/cs2-parsed-matches" / "sample-2026-02-09_de_inferno_Team_Vitality_13-8_FURIA.zip")
    snaps = build_snapshots(match, sample_every_s=None)
    post = snaps[(snaps.round_num == 1) & (snaps.moment == "post_plant")].iloc[0]
    f = match.frames[match.frames.round_num == 1]
    carrier = f[(f.tick <= post.tick) & f.has_bomb].sort_values("tick").iloc[-1]
    at = f[f.tick == f[f.tick <= post.tick].tick.max()]
    cts = at[(at.side == "CT") & at.alive]
    nearest = np.min(np.hypot(np.hypot(cts.x - carrier.x, cts.y - carrier.y), cts.z - carrier.z))
    assert post.ct_bomb_dist == pytest.approx(nearest)
    assert post.defuse_margin_s < post.time_left_s
    pre = snaps[(snaps.round_num == 1) & (snaps.moment == "pre_round")].iloc[0]
    assert np.isnan(pre.since_first_kill_s) and np.isnan(pre.ct_bomb_dist)
    assert pre.ct_hp50 == 5 and len(pre.ct_player_health) == pre.ct_alive
    dead_by_plant = (~at.alive).any()
    assert np.isnan(post.since_first_kill_s) != bool(dead_by_plant)
