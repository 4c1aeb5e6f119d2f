"""P(a side wins the round | state): scikit-learn, chosen by nested cross-validation grouped by match.

Two views of a moment, two models:
- team view (`WinProbModel`): what a demo knows: both teams' alive counts, health, equipment, utility, the bomb.
  Rows of the buy phase (moment `buy_time`) go to a buy-time model that sees only what is known before anyone
  buys: each team's resources (money + carried equipment: buying moves value from one to the other) and the
  score. It is trained on the freeze-end snapshots (`pre_round`), the moment closest to the buy.
- screenshot view (`ScreenWinProbModel`): exactly what a HUD shows: alive counts on each side, bomb status,
  the timer, the score and one player's own health, armor, money and weapon. Every alive player of a snapshot
  is one viewpoint. It answers wherever a screenshot is the input (labeler, evaluation, GRPO reward via labels,
  `chimera winprob --state`).

Honest selection: snapshots of one match are correlated, so every split is grouped by match. The outer folds
alone give the reported numbers; the feature set, the model kind, its hyperparameters and the calibration are
chosen inside each outer-train part by inner grouped folds, and calibration folds are grouped too. Rows are
weighted so that each round counts once, however many snapshots it has. Baselines in the same run, same outer
folds: the training folds' base rate, and a plain logistic regression on 8 features.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

BOMB_STATES = ("carried", "dropped", "planted", "defused", "exploded")
MOMENT_NAMES = ("pre_round", "first_contact", "post_plant", "sampled")
BUY_MOMENT = "buy_time"     # a state in the buy phase: answered by the buy-time model
FREEZE_END = "pre_round"    # the snapshots the buy-time model learns from
WEAPON_KINDS = ("rifle", "sniper", "smg", "heavy", "pistol")


def _num(df: pd.DataFrame, col: str, default: float = 0.0) -> pd.Series:
    values = df[col] if col in df else pd.Series(default, index=df.index)
    return pd.to_numeric(values, errors="coerce").astype(float)


def _bomb(df: pd.DataFrame, out: pd.DataFrame) -> None:
    status = df["bomb_status"] if "bomb_status" in df else pd.Series("carried", index=df.index)
    for state in BOMB_STATES:
        out[f"bomb_{state}"] = (status == state).astype(float)


# --------------------------------------------------------------------------------------------------
# Features: one function per view; the feature *set* is a hyperparameter chosen by nested CV
# --------------------------------------------------------------------------------------------------

PLAIN = ["ct_alive", "t_alive", "ct_health", "t_health", "ct_equip", "t_equip", "bomb_planted", "time_left_s"]
TEAM = PLAIN + ["ct_armor", "t_armor", "ct_money", "t_money", "ct_rifles", "t_rifles", "ct_snipers", "t_snipers",
                "ct_smgs", "t_smgs", "ct_utility_count", "t_utility_count", "ct_kits", "ct_score", "t_score",
                "alive_diff", "equip_diff", "health_diff", "bomb_dropped", "bomb_defused", "bomb_exploded",
                "planted_x_time"]
PLAYER = TEAM + ["ct_hp50", "t_hp50", "ct_awps", "t_awps", "kill_happened", "since_first_kill_s",
                 "defuse_margin_s", "ct_bomb_dist", "defuse_fits"]
FEATURE_SETS = {"plain": PLAIN, "team": TEAM, "player": PLAYER}
BUY_C = 0.1
BUY = ["ct_resources", "t_resources", "resources_diff", "ct_score", "t_score", "score_diff"]


def team_features(df: pd.DataFrame) -> pd.DataFrame:
    """Every team-view feature of a snapshot table (missing columns read as 0; scaled to similar ranges)."""
    out = pd.DataFrame(index=df.index)
    for col in ("ct_alive", "t_alive", "ct_health", "t_health", "ct_armor", "t_armor", "ct_rifles", "t_rifles",
                "ct_snipers", "t_snipers", "ct_smgs", "t_smgs", "ct_utility_count", "t_utility_count", "ct_kits",
                "time_left_s", "ct_score", "t_score", "ct_hp50", "t_hp50", "ct_awps", "t_awps"):
        out[col] = _num(df, col).fillna(0)
    for col in ("ct_equip", "t_equip", "ct_money", "t_money"):
        out[col] = _num(df, col).fillna(0) / 1000.0
    out["alive_diff"] = out.ct_alive - out.t_alive
    out["equip_diff"] = out.ct_equip - out.t_equip
    out["health_diff"] = (out.ct_health - out.t_health) / 100.0
    _bomb(df, out)
    out["planted_x_time"] = out.bomb_planted * out.time_left_s
    since = _num(df, "since_first_kill_s", np.nan)
    out["kill_happened"] = since.notna().astype(float)
    out["since_first_kill_s"] = since.fillna(0)
    margin = _num(df, "defuse_margin_s", np.nan)
    planted = out.bomb_planted > 0
    # post-plant geometry: meaningful only while the bomb ticks; 0 elsewhere (the bomb_planted flag separates)
    out["defuse_margin_s"] = margin.where(planted, 0).fillna(0)
    out["ct_bomb_dist"] = (_num(df, "ct_bomb_dist", np.nan) / 1000.0).where(planted, 0).fillna(0)
    out["defuse_fits"] = ((margin > 0) & planted).astype(float)
    return out


def buy_features(df: pd.DataFrame) -> pd.DataFrame:
    """What is known at buy time, before anyone buys: resources (money + carried equipment) and the score."""
    out = pd.DataFrame(index=df.index)
    out["ct_resources"] = (_num(df, "ct_money").fillna(0) + _num(df, "ct_equip").fillna(0)) / 1000.0
    out["t_resources"] = (_num(df, "t_money").fillna(0) + _num(df, "t_equip").fillna(0)) / 1000.0
    out["resources_diff"] = out.ct_resources - out.t_resources
    out["ct_score"], out["t_score"] = _num(df, "ct_score").fillna(0), _num(df, "t_score").fillna(0)
    out["score_diff"] = out.ct_score - out.t_score
    return out


SCREEN_FIELDS = ("own_alive", "enemy_alive", "time_left_s", "own_score", "enemy_score", "own_health", "own_armor",
                 "own_money")
SCREEN_PLAIN = ["own_alive", "enemy_alive", "alive_diff", "bomb_planted", "time_left_s"]
SCREEN_FULL = SCREEN_PLAIN + ["is_ct", "own_score", "enemy_score", "own_health", "own_armor", "own_money",
                              "bomb_dropped", "bomb_defused", "bomb_exploded", "planted_x_time",
                              *[f"weapon_{k}" for k in WEAPON_KINDS]]
SCREEN_SETS = {"alive": SCREEN_PLAIN, "hud": SCREEN_FULL}


def screen_features(df: pd.DataFrame) -> pd.DataFrame:
    """Features of screenshot-view rows (columns of SCREEN_FIELDS, `side`, `bomb_status`, `weapon_kind`)."""
    out = pd.DataFrame(index=df.index)
    for col in SCREEN_FIELDS:
        out[col] = _num(df, col).fillna(0)
    out["own_money"] /= 1000.0
    out["alive_diff"] = out.own_alive - out.enemy_alive
    out["is_ct"] = (df["side"] == "CT").astype(float) if "side" in df else 0.0
    _bomb(df, out)
    out["planted_x_time"] = out.bomb_planted * out.time_left_s
    kinds = df["weapon_kind"] if "weapon_kind" in df else pd.Series("", index=df.index)
    for kind in WEAPON_KINDS:
        out[f"weapon_{kind}"] = (kinds == kind).astype(float)
    return out


def screen_rows(snaps: pd.DataFrame, per_side: int | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per (snapshot, alive player): that player's HUD and whether the player's side won. `per_side` keeps
    that many players per side and snapshot, drawn with the seed (the rows of a snapshot share all but the
    player's own fields, so a few carry almost all the information at a fraction of the fitting time)."""
    from chimera.schema import weapon_kind

    rng = np.random.default_rng(seed)
    rows = []
    for i, s in enumerate(snaps.itertuples(index=False)):
        for side in ("CT", "T"):
            own, enemy = side.lower(), "t" if side == "CT" else "ct"
            players = list(zip(getattr(s, f"{own}_player_health"), getattr(s, f"{own}_player_armor"),
                               getattr(s, f"{own}_player_money"), getattr(s, f"{own}_player_weapon")))
            if per_side is not None and len(players) > per_side:
                players = [players[j] for j in sorted(rng.choice(len(players), per_side, replace=False))]
            for h, a, m, w in players:
                rows.append({"snapshot": i, "match_id": s.match_id, "round_num": s.round_num, "moment": s.moment,
                             "side": side, "own_alive": getattr(s, f"{own}_alive"),
                             "enemy_alive": getattr(s, f"{enemy}_alive"), "bomb_status": s.bomb_status,
                             "time_left_s": s.time_left_s, "own_score": getattr(s, f"{own}_score"),
                             "enemy_score": getattr(s, f"{enemy}_score"), "own_health": h, "own_armor": a,
                             "own_money": m, "weapon_kind": weapon_kind(w) if w else "",
                             "won": int(s.winner_side == side)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------------

class ScaledLogit(ClassifierMixin, BaseEstimator):
    """Standardise, then logistic regression; takes sample_weight (a Pipeline would need routing for it)."""

    def __init__(self, C: float = 1.0):
        self.C = C

    def fit(self, X, y, sample_weight=None):
        self.scaler_ = StandardScaler().fit(X)
        self.model_ = LogisticRegression(C=self.C, max_iter=3000).fit(self.scaler_.transform(X), y,
                                                                       sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(self.scaler_.transform(X))


def make_estimator(kind: str, calibration: str = "none", calibration_splits=None, seed: int = 0, **hyper):
    if kind == "logreg":
        base = ScaledLogit(C=hyper.get("C", 1.0))
    elif kind == "gbm":
        base = HistGradientBoostingClassifier(max_depth=hyper.get("max_depth", 3), learning_rate=hyper.get("lr", 0.05),
                                              max_iter=hyper.get("max_iter", 150), l2_regularization=1.0,
                                              min_samples_leaf=hyper.get("min_leaf", 40), random_state=seed)
    else:
        raise ValueError(f"unknown win-probability model {kind!r} (logreg | gbm)")
    if calibration == "none":
        return base
    return CalibratedClassifierCV(base, method=calibration, cv=calibration_splits or 3)


@dataclass(frozen=True)
class Candidate:
    """One point of the selection grid: which features, which model, which calibration."""
    features: str
    kind: str
    calibration: str = "none"
    hyper: tuple = ()

    @property
    def columns(self) -> list[str]:
        return FEATURE_SETS.get(self.features) or SCREEN_SETS[self.features]

    @property
    def name(self) -> str:
        h = ",".join(f"{k}={v}" for k, v in self.hyper)
        return f"{self.kind}({h})[{self.features}]" + ("" if self.calibration == "none" else f"+{self.calibration}")


def candidate_grid(feature_sets, kinds, calibrations, logreg_C=(0.1, 1.0), gbm_depth=(2, 3)) -> list[Candidate]:
    out = []
    for fs, kind, cal in itertools.product(feature_sets, kinds, calibrations):
        grid = [(("C", c),) for c in logreg_C] if kind == "logreg" else [(("max_depth", d),) for d in gbm_depth]
        out += [Candidate(fs, kind, cal, h) for h in grid]
    return out


def round_ids(df: pd.DataFrame) -> np.ndarray:
    """One integer per (match, round): the rows that share a round's one outcome."""
    return df.groupby(["match_id", "round_num"]).ngroup().to_numpy()


def round_weights(df: pd.DataFrame) -> np.ndarray:
    """1 / (rows of the row's round): each round weighs the same however densely it was sampled."""
    ids = round_ids(df)
    return 1.0 / np.bincount(ids)[ids].astype(float)


def grouped_folds(groups: pd.Series, n_splits: int):
    n_splits = min(n_splits, groups.nunique())
    if n_splits < 2:
        raise ValueError(f"win probability needs snapshots from at least 2 matches, got {groups.nunique()}")
    return list(GroupKFold(n_splits=n_splits).split(np.zeros(len(groups)), groups=groups))


def fit_candidate(c: Candidate, X: pd.DataFrame, y, w, groups: pd.Series, calibration_folds: int, seed: int,
                  audit: list | None = None):
    """Fit one candidate; calibration folds are grouped by match too (recorded in `audit`)."""
    splits = None
    if c.calibration != "none":
        splits = grouped_folds(groups.reset_index(drop=True), calibration_folds)
        if audit is not None:
            audit += [(set(groups.iloc[a]), set(groups.iloc[b])) for a, b in splits]
    model = make_estimator(c.kind, c.calibration, splits, seed, **dict(c.hyper))
    return model.fit(X[c.columns], y, sample_weight=w)


def predict(model, c: Candidate, X: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(X[c.columns])[:, 1]


def weighted_log_loss(y, p, w) -> float:
    return float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), sample_weight=w, labels=[0, 1]))


def _inner_loss(c: Candidate, X, y, w, groups: pd.Series, inner, calibration_folds: int, seed: int):
    """One candidate's inner-CV weighted log loss, and the (train, test) matches of every split it used."""
    p, splits = np.zeros(len(y)), []
    for a, b in inner:
        splits.append((set(groups.iloc[a]), set(groups.iloc[b])))
        model = fit_candidate(c, X.iloc[a], y[a], w[a], groups.iloc[a], calibration_folds, seed, splits)
        p[b] = predict(model, c, X.iloc[b])
    return weighted_log_loss(y, p, w), splits


def select(candidates, X, y, w, groups: pd.Series, inner_folds: int, calibration_folds: int, seed: int,
           audit: list | None = None, workers: int = 1) -> tuple[Candidate, dict]:
    """The candidate with the best inner-CV (grouped) weighted log loss on this data. `workers` processes fit the
    candidates side by side (joblib; each with one thread): the same losses as one process, in less time."""
    from joblib import Parallel, delayed

    groups = groups.reset_index(drop=True)
    inner = grouped_folds(groups, inner_folds)
    found = Parallel(n_jobs=workers)(delayed(_inner_loss)(c, X, y, w, groups, inner, calibration_folds, seed)
                                     for c in candidates)
    losses = {c.name: loss for c, (loss, _) in zip(candidates, found)}
    if audit is not None:
        audit += [split for _, splits in found for split in splits]
    best = min(candidates, key=lambda c: losses[c.name])
    return best, losses


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------

def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    gap = np.abs(np.bincount(idx, weights=y, minlength=bins) - np.bincount(idx, weights=p, minlength=bins))
    return float(gap.sum() / len(y))  # sum over bins of (share of rows) x |mean y - mean p|: count cancels


def ece_floor(p, rounds, target: float, n: int = 1000, seed: int = 0) -> dict:
    """The ECE that a perfectly calibrated model with these predictions would show on these rows: outcomes drawn from
    the predictions themselves, one uniform draw per round (y = u_round < p), since a round has one outcome for all
    its snapshots. On 222 rounds the 10-bin ECE of a perfect model is far from 0; a target below this is noise."""
    p = np.asarray(p, dtype=float)
    codes = pd.factorize(np.asarray(rounds))[0]  # round_ids(), or any labels of the rounds
    rng = np.random.default_rng(seed)
    draws = np.array([expected_calibration_error((rng.random(codes.max() + 1)[codes] < p).astype(float), p)
                      for _ in range(n)])
    return {"mean": float(draws.mean()), "ci95": [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))],
            "target": target, "share_meeting_target": float((draws <= target).mean()),
            "rounds": int(codes.max() + 1), "rows": int(len(p)), "draws": n}


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic with average ranks for ties: sklearn's roc_auc_score, without its
    input checks (the bootstrap calls it thousands of times)."""
    from scipy.stats import rankdata

    positive = y == 1
    n_pos = int(positive.sum())
    n_neg = len(y) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    return float((rankdata(p)[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Log loss, Brier, ROC AUC and ECE, in numpy: with sklearn's metrics and their input checks a call took 4 ms,
    and the bootstrap makes about 11,000 (tests/test_winprob.py holds these equal to sklearn's)."""
    y, p = np.asarray(y, dtype=float), np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return {"log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), "brier": float(np.mean((p - y) ** 2)),
            "roc_auc": roc_auc(y, p), "ece": expected_calibration_error(y, p), "n": int(len(y))}


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return pd.DataFrame([{"bin": b, "predicted": float(p[idx == b].mean()), "observed": float(y[idx == b].mean()),
                          "count": int((idx == b).sum())} for b in range(bins) if (idx == b).any()])


def bootstrap_over_matches(y, preds: dict[str, np.ndarray], groups: pd.Series, reference: str, n: int = 1000,
                           seed: int = 0) -> dict:
    """95% intervals by resampling whole matches: each model's log loss, AUC and ECE, and each model's log loss and
    AUC minus the reference's (paired: the same resampled rows for both)."""
    rng = np.random.default_rng(seed)
    matches = groups.unique()
    rows_of = {m: np.flatnonzero((groups == m).to_numpy()) for m in matches}
    draws = {name: {"log_loss": [], "roc_auc": [], "ece": []} for name in preds}
    diffs = {name: {"log_loss": [], "roc_auc": []} for name in preds if name != reference}
    for _ in range(n):
        idx = np.concatenate([rows_of[m] for m in rng.choice(matches, size=len(matches), replace=True)])
        if len(set(y[idx])) < 2:
            continue
        scored = {name: score(y[idx], p[idx]) for name, p in preds.items()}
        for name, s in scored.items():
            for k in draws[name]:
                draws[name][k].append(s[k])
        for name in diffs:
            for k in diffs[name]:
                diffs[name][k].append(scored[name][k] - scored[reference][k])
    ci = lambda v: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]  # noqa: E731
    return {"resamples": n, "unit": "match",
            "models": {name: {k: ci(v) for k, v in d.items()} for name, d in draws.items()},
            f"minus_{reference}": {name: {k: ci(v) for k, v in d.items()} for name, d in diffs.items()}}


# --------------------------------------------------------------------------------------------------
# The models people use
# --------------------------------------------------------------------------------------------------

@dataclass
class WinProbModel:
    """Team view. predict(rows) routes buy-phase rows to the buy-time model."""
    live: object
    live_candidate: Candidate
    buy: object
    medians: dict = field(default_factory=dict)   # fills fields a partial state leaves out (`chimera winprob`)

    @property
    def buy_model_name(self) -> str:
        return f"buy-time logreg(C={BUY_C}) on {','.join(BUY)}"

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        out = predict(self.live, self.live_candidate, team_features(df))
        is_buy = (df["moment"] == BUY_MOMENT).to_numpy() if "moment" in df else np.zeros(len(df), bool)
        if is_buy.any():
            out[is_buy] = self.buy.predict_proba(buy_features(df[is_buy])[BUY])[:, 1]
        return out


@dataclass
class ScreenWinProbModel:
    """Screenshot view: P(the player's own side wins) from one HUD's fields."""
    model: object
    candidate: Candidate
    medians: dict = field(default_factory=dict)

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return predict(self.model, self.candidate, screen_features(df))


@dataclass
class WinProbConfig:
    feature_sets: tuple = ("plain", "team", "player")
    kinds: tuple = ("logreg", "gbm")
    calibrations: tuple = ("none", "sigmoid")
    logreg_C: tuple = (0.1, 1.0)
    gbm_depth: tuple = (3,)
    outer_folds: int = 5
    inner_folds: int = 4
    calibration_folds: int = 3
    bootstrap: int = 1000
    screen_viewpoints_per_side: int | None = 1
    seed: int = 0
    workers: int = 1                # processes fitting the candidates of a selection (joblib)


@dataclass
class NestedResult:
    oof: np.ndarray                 # outer-fold predictions of the nested-selected model
    baselines: dict                 # name -> outer-fold predictions on the same folds
    folds: list                     # per outer fold: test matches, chosen candidate, scores
    audit: list                     # per outer fold: its test matches and every inner/calibration split inside it


def nested_cv(X: pd.DataFrame, y, w, groups: pd.Series, candidates, baselines: dict[str, Candidate],
              cfg: WinProbConfig) -> NestedResult:
    """Outer grouped folds; inside each, choose among `candidates` by inner grouped folds, refit, predict."""
    outer = grouped_folds(groups, cfg.outer_folds)
    oof = np.zeros(len(y))
    base = {name: np.zeros(len(y)) for name in ["base_rate", *baselines]}
    folds, audit = [], []
    for k, (tr, te) in enumerate(outer):
        splits: list = []  # (train matches, test matches) of every inner and calibration split of this fold
        audit.append({"outer_train": set(groups.iloc[tr]), "outer_test": set(groups.iloc[te]), "splits": splits})
        g_tr = groups.iloc[tr]
        best, losses = select(candidates, X.iloc[tr], y[tr], w[tr], g_tr, cfg.inner_folds, cfg.calibration_folds,
                              cfg.seed, splits, workers=cfg.workers)
        model = fit_candidate(best, X.iloc[tr], y[tr], w[tr], g_tr, cfg.calibration_folds, cfg.seed, splits)
        oof[te] = predict(model, best, X.iloc[te])
        base["base_rate"][te] = np.average(y[tr], weights=w[tr])
        for name, c in baselines.items():
            base[name][te] = predict(fit_candidate(c, X.iloc[tr], y[tr], w[tr], g_tr, cfg.calibration_folds, cfg.seed),
                                     c, X.iloc[te])
        folds.append({"fold": k, "test_matches": sorted(set(groups.iloc[te])), "n_test": int(len(te)),
                      "chosen": best.name, "inner_log_loss": round(losses[best.name], 4),
                      "chosen_score": score(y[te], oof[te]),
                      **{f"{name}_score": score(y[te], p[te]) for name, p in base.items() if name != "base_rate"}})
    return NestedResult(oof, base, folds, audit)


def _report(y, moments: pd.Series, groups, preds: dict[str, np.ndarray], reference: str, cfg: WinProbConfig) -> dict:
    out = {name: score(y, p) for name, p in preds.items()}
    out["per_moment"] = {}
    for m in MOMENT_NAMES:
        mask = (moments == m).to_numpy()
        if mask.sum() < 10:
            continue
        out["per_moment"][m] = {name: score(y[mask], p[mask]) for name, p in preds.items()}
        ci = bootstrap_over_matches(y[mask], {k: v[mask] for k, v in preds.items()}, groups[mask].reset_index(drop=True),
                                    reference, max(200, cfg.bootstrap // 5), cfg.seed)
        out["per_moment"][m]["intervals"] = ci  # fewer resamples per moment: 200 give the 95% bounds to ~0.01
    out["intervals"] = bootstrap_over_matches(y, preds, groups, reference, cfg.bootstrap, cfg.seed)
    return out


def _medians(df: pd.DataFrame, cols) -> dict:
    return {c: float(pd.to_numeric(df[c], errors="coerce").median()) for c in cols if c in df}


def train_team_view(snaps: pd.DataFrame, cfg: WinProbConfig = WinProbConfig()) -> tuple[WinProbModel, dict, pd.DataFrame]:
    """Nested-CV metrics of the team view against its baselines, the model refit on all matches, and the outer-fold
    predictions per snapshot: p_ct_win (chosen), p_plain (baseline), p_buy_time (freeze-end rows only)."""
    X, y, w, groups = team_features(snaps), snaps.ct_win.to_numpy(), round_weights(snaps), snaps.match_id
    candidates = candidate_grid(cfg.feature_sets, cfg.kinds, cfg.calibrations, cfg.logreg_C, cfg.gbm_depth)
    plain = Candidate("plain", "logreg", "none", (("C", 1.0),))
    nested = nested_cv(X, y, w, groups, candidates, {"plain_logreg": plain}, cfg)
    preds = {"chosen": nested.oof, **nested.baselines}
    metrics = _report(y, snaps.moment, groups, preds, "plain_logreg", cfg)
    metrics["chosen_per_fold"] = nested.folds
    # buy time: the same outer folds, freeze-end rows, only what is known before the buy
    fe = (snaps.moment == FREEZE_END).to_numpy()
    B, buy_oof, buy_base = buy_features(snaps)[BUY], np.zeros(len(y)), np.zeros(len(y))
    for tr, te in grouped_folds(groups, cfg.outer_folds):
        tr, te = tr[fe[tr]], te[fe[te]]
        buy_oof[te] = ScaledLogit(C=BUY_C).fit(B.iloc[tr], y[tr], sample_weight=w[tr]).predict_proba(B.iloc[te])[:, 1]
        buy_base[te] = np.average(y[tr], weights=w[tr])
    metrics["per_moment"][BUY_MOMENT] = {
        "chosen": score(y[fe], buy_oof[fe]), "base_rate": score(y[fe], buy_base[fe]),
        "chosen_after_the_buy": score(y[fe], nested.oof[fe]),
        "intervals": bootstrap_over_matches(y[fe], {"chosen": buy_oof[fe], "base_rate": buy_base[fe]},
                                            groups[fe].reset_index(drop=True), "base_rate",
                                            max(200, cfg.bootstrap // 5), cfg.seed)}
    best, losses = select(candidates, X, y, w, groups, cfg.inner_folds, cfg.calibration_folds, cfg.seed,
                          workers=cfg.workers)
    metrics["final"] = {"candidate": best.name, "buy_time_model": f"logreg(C={BUY_C}) on " + ",".join(BUY),
                        "inner_log_loss": {k: round(v, 4) for k, v in sorted(losses.items(), key=lambda kv: kv[1])}}
    live = fit_candidate(best, X, y, w, groups, cfg.calibration_folds, cfg.seed)
    buy = ScaledLogit(C=BUY_C).fit(B[fe], y[fe], sample_weight=w[fe])
    medians = _medians(snaps[~fe], ["ct_alive", "t_alive", "ct_health", "t_health", "ct_armor", "t_armor",
                                        "ct_equip", "t_equip", "ct_money", "t_money", "time_left_s"])
    oof = pd.DataFrame({"p_ct_win": nested.oof, "p_plain": nested.baselines["plain_logreg"],
                        "p_buy_time": np.where(fe, buy_oof, np.nan)}, index=snaps.index)
    return WinProbModel(live, best, buy, medians), metrics, oof


def train_screen_view(snaps: pd.DataFrame, cfg: WinProbConfig = WinProbConfig()) -> tuple[ScreenWinProbModel, dict]:
    rows = screen_rows(snaps, cfg.screen_viewpoints_per_side, cfg.seed)
    X, y, w, groups = screen_features(rows), rows.won.to_numpy(), round_weights(rows), rows.match_id
    candidates = candidate_grid(("alive", "hud"), cfg.kinds, cfg.calibrations, cfg.logreg_C, cfg.gbm_depth)
    plain = Candidate("alive", "logreg", "none", (("C", 1.0),))
    nested = nested_cv(X, y, w, groups, candidates, {"plain_logreg": plain}, cfg)
    metrics = _report(y, rows.moment, groups, {"chosen": nested.oof, **nested.baselines}, "plain_logreg", cfg)
    metrics["chosen_per_fold"] = nested.folds
    metrics["viewpoints"] = int(len(rows))
    best, losses = select(candidates, X, y, w, groups, cfg.inner_folds, cfg.calibration_folds, cfg.seed,
                          workers=cfg.workers)
    metrics["final"] = {"candidate": best.name,
                        "inner_log_loss": {k: round(v, 4) for k, v in sorted(losses.items(), key=lambda kv: kv[1])}}
    model = fit_candidate(best, X, y, w, groups, cfg.calibration_folds, cfg.seed)
    return ScreenWinProbModel(model, best, _medians(rows, SCREEN_FIELDS)), metrics


# --------------------------------------------------------------------------------------------------
# Answering for one state
# --------------------------------------------------------------------------------------------------

def predict_ct_win(model: WinProbModel, state: dict) -> float:
    """P(CT wins) for one team-view state; fields it leaves out take the training medians."""
    row = {**model.medians, **{k: v for k, v in state.items() if v is not None}}
    return float(model.predict(pd.DataFrame([row]))[0])


def screen_row_from_game_state(state, own_score: int | None = None, enemy_score: int | None = None,
                               time_left_s: float | None = None) -> dict:
    """A screenshot-view row from a HUD game_state; what the HUD did not show stays None (filled by medians)."""
    from chimera.schema import weapon_kind

    bomb = state.bomb_status if state.bomb_status in BOMB_STATES else None
    return {"side": state.player_side,
            "own_alive": None if state.alive_teammates is None else state.alive_teammates + 1,
            "enemy_alive": state.alive_enemies, "bomb_status": bomb or "carried",
            "time_left_s": time_left_s, "own_score": own_score, "enemy_score": enemy_score,
            "own_health": state.player_health, "own_armor": state.player_armor, "own_money": state.player_money,
            "weapon_kind": weapon_kind(state.weapon_primary) if state.weapon_primary else ""}


def p_side_wins(model: ScreenWinProbModel, state, **kwargs) -> float:
    """P(the screenshot's player's side wins), from the screenshot-view model."""
    return p_side_wins_many(model, [state], **kwargs)[0]


def p_side_wins_many(model: ScreenWinProbModel, states: list, **kwargs) -> list[float]:
    """`p_side_wins` for many screenshots in one prediction: a DataFrame of features per frame was most of an
    evaluation's time (stages/evaluate.py 4.8 s -> 2.6 s, BENCHMARKS.md)."""
    if not states:
        return []
    rows = [screen_row_from_game_state(state, **kwargs) for state in states]
    filled = [{**model.medians, **{k: v for k, v in row.items() if v is not None}} for row in rows]
    return [float(p) for p in model.predict(pd.DataFrame(filled))]


def missing_fields(model, row: dict) -> list[str]:
    """Which of the model's inputs a partial state left out (they were filled with training medians)."""
    return sorted(k for k in model.medians if row.get(k) is None)
