"""P(CT wins the round | team-level state): scikit-learn, calibrated, evaluated on splits grouped by match.

Snapshots of one round (and one match) are correlated, so every split is grouped by match: out-of-fold
predictions from GroupKFold give the metrics, and the shipped model is refit on all matches.
Baseline to beat: the training folds' base rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

BOMB_STATES = ("carried", "dropped", "planted", "defused", "exploded")
MOMENT_NAMES = ("pre_round", "first_contact", "post_plant", "sampled")


def features(df: pd.DataFrame) -> pd.DataFrame:
    """Numeric features of a snapshot table (also used for single states from `chimera winprob`)."""
    out = pd.DataFrame(index=df.index)
    for col in ("ct_alive", "t_alive", "ct_health", "t_health", "ct_armor", "t_armor", "ct_equip", "t_equip",
                "ct_money", "t_money", "ct_rifles", "t_rifles", "ct_snipers", "t_snipers", "ct_smgs", "t_smgs",
                "ct_utility_count", "t_utility_count", "ct_kits", "time_left_s", "ct_score", "t_score"):
        values = df[col] if col in df else pd.Series(0.0, index=df.index)
        out[col] = pd.to_numeric(values, errors="coerce").fillna(0).astype(float)
    out["alive_diff"] = out.ct_alive - out.t_alive
    out["equip_diff"] = (out.ct_equip - out.t_equip) / 1000.0
    out["health_diff"] = (out.ct_health - out.t_health) / 100.0
    out["ct_equip"] /= 1000.0
    out["t_equip"] /= 1000.0
    out["ct_money"] /= 1000.0
    out["t_money"] /= 1000.0
    for state in BOMB_STATES:
        out[f"bomb_{state}"] = (df["bomb_status"] == state).astype(float) if "bomb_status" in df else 0.0
    out["planted_x_time"] = out["bomb_planted"] * out["time_left_s"]
    for moment in MOMENT_NAMES:
        out[f"moment_{moment}"] = (df["moment"] == moment).astype(float) if "moment" in df else 0.0
    return out


def make_model(kind: str, calibration: str = "sigmoid", seed: int = 0):
    if kind == "logreg":
        base = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
    elif kind == "gbm":
        base = HistGradientBoostingClassifier(max_depth=3, learning_rate=0.05, max_iter=200,
                                              l2_regularization=1.0, random_state=seed)
    else:
        raise ValueError(f"unknown win-probability model {kind!r} (logreg | gbm)")
    return CalibratedClassifierCV(base, method=calibration, cv=3) if calibration != "none" else base


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            ece += mask.mean() * abs(y[mask].mean() - p[mask].mean())
    return float(ece)


def score(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return {"log_loss": float(log_loss(y, p, labels=[0, 1])), "brier": float(brier_score_loss(y, p)),
            "roc_auc": float(roc_auc_score(y, p)) if len(set(y)) == 2 else float("nan"),
            "ece": expected_calibration_error(y, p), "n": int(len(y))}


@dataclass
class WinProbResult:
    model: object             # fitted on all snapshots, the chosen kind
    kind: str
    oof: pd.Series            # out-of-fold P(CT win) per snapshot of the chosen kind
    metrics: dict
    reliability: pd.DataFrame


def grouped_folds(groups: pd.Series, n_splits: int):
    n_splits = min(n_splits, groups.nunique())
    if n_splits < 2:
        raise ValueError(f"win probability needs snapshots from at least 2 matches, got {groups.nunique()}")
    return list(GroupKFold(n_splits=n_splits).split(np.zeros(len(groups)), groups=groups))


def train_winprob(snaps: pd.DataFrame, kinds=("logreg", "gbm"), n_splits: int = 5,
                  calibration: str = "sigmoid", seed: int = 0) -> WinProbResult:
    X, y, groups = features(snaps), snaps.ct_win.to_numpy(), snaps.match_id
    folds = grouped_folds(groups, n_splits)
    for train, test in folds:  # the property the whole design rests on
        assert not set(groups.iloc[train]) & set(groups.iloc[test])
    metrics, oof_by_kind = {}, {}
    base = np.zeros(len(y))
    for train, test in folds:
        base[test] = y[train].mean()
    metrics["baseline_base_rate"] = score(y, base)
    for kind in kinds:
        oof = np.zeros(len(y))
        for train, test in folds:
            model = make_model(kind, calibration, seed).fit(X.iloc[train], y[train])
            oof[test] = model.predict_proba(X.iloc[test])[:, 1]
        oof_by_kind[kind] = oof
        metrics[kind] = score(y, oof)
        metrics[kind]["per_moment"] = {m: score(y[mask], oof[mask])
                                       for m in snaps.moment.unique()
                                       if (mask := (snaps.moment == m).to_numpy()).sum() >= 10}
    best = min(kinds, key=lambda k: metrics[k]["log_loss"])
    metrics["chosen"] = best
    metrics["beats_baseline"] = metrics[best]["log_loss"] < metrics["baseline_base_rate"]["log_loss"]
    metrics["folds"] = len(folds)
    metrics["matches"] = int(groups.nunique())
    p = oof_by_kind[best]
    edges = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, 9)
    reliability = pd.DataFrame([{"bin": b, "predicted": float(p[idx == b].mean()), "observed": float(y[idx == b].mean()),
                                 "count": int((idx == b).sum())} for b in range(10) if (idx == b).any()])
    final = make_model(best, calibration, seed).fit(X, y)
    return WinProbResult(final, best, pd.Series(p, index=snaps.index, name="p_ct_win"), metrics, reliability)


def predict_ct_win(model, state: dict) -> float:
    return float(model.predict_proba(features(pd.DataFrame([state])))[0, 1])


def snapshot_from_game_state(state, own_score: int = 0, enemy_score: int = 0, time_left_s: float = 60.0) -> dict:
    """A snapshot-like row from one player's HUD state, so the demo-trained model can score a screenshot.

    The HUD shows only the player's own health and loadout: teammates are assumed alike, enemies full.
    """
    from chimera.schema import weapon_kind

    side = state.player_side if state.player_side in ("CT", "T") else "CT"
    own, enemy = side.lower(), "t" if side == "CT" else "ct"
    own_alive = (state.alive_teammates or 0) + 1
    enemy_alive = state.alive_enemies if state.alive_enemies is not None else 5
    kind = weapon_kind(state.weapon_primary)
    per_player_equip = {"rifle": 4700, "sniper": 6500, "smg": 2500, "heavy": 2500}.get(kind, 1000)
    bomb = state.bomb_status if state.bomb_status in BOMB_STATES else "carried"
    return {
        f"{own}_alive": own_alive, f"{enemy}_alive": enemy_alive,
        f"{own}_health": (state.player_health or 100) + 100 * (own_alive - 1), f"{enemy}_health": 100 * enemy_alive,
        f"{own}_armor": (state.player_armor or 0) * own_alive, f"{enemy}_armor": 100 * enemy_alive,
        f"{own}_equip": per_player_equip * own_alive, f"{enemy}_equip": 4000 * enemy_alive,
        f"{own}_money": (state.player_money or 0) * own_alive, f"{enemy}_money": 3000 * enemy_alive,
        f"{own}_rifles": own_alive if kind == "rifle" else 0, f"{own}_snipers": int(kind == "sniper"),
        f"{own}_utility_count": len(state.utility or []) * own_alive,
        "time_left_s": time_left_s, f"{own}_score": own_score, f"{enemy}_score": enemy_score,
        "bomb_status": bomb, "moment": "post_plant" if bomb == "planted" else "sampled",
    }


def p_side_wins(model, state, **kwargs) -> float:
    p_ct = predict_ct_win(model, snapshot_from_game_state(state, **kwargs))
    return p_ct if state.player_side == "CT" else 1.0 - p_ct
