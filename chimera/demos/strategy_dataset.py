"""Strategy text dataset: a snapshot's state -> analysis + advice (schema vocabulary) + outcome.

Each example keeps the state twice: `prompt`, everything the demo records as prose (map, round, score, time left,
both teams' players, health, equipment, money, weapons, grenades, the bomb), and `game_state`, the part the
player's HUD shows, as the screenshot answer writes it. Pretraining (stages/pretrain_strategy.py,
`pretraining_examples`) puts the prose in the user turn and begins the assistant turn with `{"game_state":...,`,
so the analysis it learns is written where the model writes it for a screenshot, from an input that holds every
fact its rules use: the round (pistol economy and importance), the score (match point) and the time left. The
situation's win chance is the demo model's estimate from the full snapshot, which the prose summarises.

Each snapshot yields one example per side (the CT view and the T view of the same moment), grounded in
the out-of-fold win probability. Train/val are split by match (never one match on both sides), the
split with the best balance among a few seeds is kept, and the stage fails if it is still badly skewed.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import pandas as pd
from sklearn.model_selection import GroupShuffleSplit

from chimera.schema import GameState
from chimera.strategist import Context, analyse

PHASE_OF_MOMENT = {"pre_round": "playing", "first_contact": "playing", "sampled": "playing", "post_plant": "post_plant"}
STRATEGY_SYSTEM_PROMPT = ("You are Chimera, a Counter-Strike 2 analyst. Given the round as its demo records it, answer "
                          "with the JSON object: the player's game_state, analysis, advice and the round's outcome.")


def _most_common(items) -> str | None:
    items = [i for i in items if isinstance(i, str)]
    return Counter(items).most_common(1)[0][0] if items else None


def perspective_state(row, side: str) -> GameState:
    own, enemy = side.lower(), ("t" if side == "CT" else "ct")
    alive = int(row[f"{own}_alive"])
    bomb = row.bomb_status if row.bomb_status in ("carried", "dropped", "planted", "defused", "exploded") else None
    return GameState(
        map_name=row.map_name, round_phase=PHASE_OF_MOMENT.get(row.moment, "playing"), player_side=side,
        player_health=int(row[f"{own}_health"] / alive) if alive else 0,
        player_armor=int(row[f"{own}_armor"] / alive) if alive else 0,
        player_money=min(int(row[f"{own}_money"] / 5), 16000), team_money_total=int(row[f"{own}_money"]),
        weapon_primary=_most_common(row[f"{own}_weapons"]), weapon_secondary=None,
        utility=sorted(set(row[f"{own}_utility"]))[:4], alive_teammates=max(min(alive - 1, 4), 0),
        alive_enemies=int(row[f"{enemy}_alive"]), bomb_status=bomb,
        site=(row.bomb_site if isinstance(row.bomb_site, str) and row.bomb_site in ("A", "B") else
              ("none" if bomb != "planted" else "unknown")),
        visible_enemies=None)


def state_text(row, side: str) -> str:
    own, enemy = side.lower(), ("t" if side == "CT" else "ct")
    other = "T" if side == "CT" else "CT"
    own_score, enemy_score = row[f"{own}_score"], row[f"{enemy}_score"]

    def team(prefix: str, name: str) -> str:
        weapons = Counter(row[f"{prefix}_weapons"])
        arms = ", ".join(f"{w} x{n}" if n > 1 else w for w, n in weapons.most_common()) or "pistols only"
        return (f"{name}: {row[f'{prefix}_alive']} alive, {row[f'{prefix}_health']} HP total, "
                f"equipment ${row[f'{prefix}_equip']}, money ${row[f'{prefix}_money']}; {arms}; "
                f"{row[f'{prefix}_utility_count']} grenades" + (f"; {row[f'{prefix}_kits']} kits" if prefix == "ct" else ""))

    bomb = row.bomb_status + (f" at {row.bomb_site}" if isinstance(row.bomb_site, str) else "")
    return (f"Map {row.map_name}, round {row.round_num}, score {side} {own_score} - {other} {enemy_score}. "
            f"Moment: {row.moment.replace('_', ' ')}, {row.time_left_s:.0f} s left. You play {side}.\n"
            f"{team(own, 'Your team (' + side + ')')}.\n{team(enemy, 'Enemies (' + other + ')')}.\nBomb: {bomb}.")


def build_examples(snaps: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for row in snaps.itertuples(index=False):
        for side in ("CT", "T"):
            own = side.lower()
            if row._asdict()[f"{own}_alive"] == 0:
                continue
            r = row._asdict()
            p_ct = r.get("p_ct_win")
            p_win = None if p_ct is None or (isinstance(p_ct, float) and math.isnan(p_ct)) else (
                p_ct if side == "CT" else 1 - p_ct)
            state = perspective_state(pd.Series(r), side)
            ctx = Context(round_num=r["round_num"], own_score=r[f"{own}_score"],
                          enemy_score=r["t_score" if side == "CT" else "ct_score"],
                          time_left_s=r["time_left_s"], p_win=p_win)
            analysis, advice = analyse(state, ctx)
            target = {"analysis": analysis.model_dump(mode="json"), "advice": advice.model_dump(mode="json"),
                      "outcome": {"win_probability": None if p_win is None else round(p_win, 3),
                                  "round_won": r["winner_side"] == side, "end_reason": r["end_reason"]}}
            rows.append({"match_id": r["match_id"], "map_name": r["map_name"], "round_num": r["round_num"],
                         "moment": r["moment"], "side": side, "won": int(r["winner_side"] == side),
                         "prompt": state_text(pd.Series(r), side), "game_state": state.model_dump_json(),
                         # compact, as the screenshot answer is written (schema.to_json): the same tokens follow
                         "completion": json.dumps(target, separators=(",", ":"), ensure_ascii=False)})
    return pd.DataFrame(rows)


def pretraining_examples(examples: pd.DataFrame, completions: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(user text, game_state JSON, the answer's rest) for `sft.answer_dataset`: the prose is the user turn, so the
    score, round and time the targets depend on are in the input. `completions` replaces the targets (the control)."""
    targets = examples.completion.tolist() if completions is None else completions
    return list(zip(examples.prompt, examples.game_state, targets))


def total_variation(a: pd.Series, b: pd.Series) -> float:
    pa, pb = a.value_counts(normalize=True), b.value_counts(normalize=True)
    keys = set(pa.index) | set(pb.index)
    return 0.5 * sum(abs(pa.get(k, 0.0) - pb.get(k, 0.0)) for k in keys)


BALANCE_COLUMNS = ("side", "moment", "map_name", "won")


def split_by_match(examples: pd.DataFrame, val_fraction: float, seed: int, tries: int = 20
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Grouped split; among `tries` seeds keep the one whose worst non-map imbalance is smallest."""
    best = None
    for k in range(tries):
        splitter = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed + k)
        train_idx, val_idx = next(splitter.split(examples, groups=examples.match_id))
        train, val = examples.iloc[train_idx], examples.iloc[val_idx]
        balance = {c: round(total_variation(train[c], val[c]), 4) for c in BALANCE_COLUMNS}
        worst = max(v for c, v in balance.items() if c != "map_name")
        if best is None or worst < best[0]:
            best = (worst, train, val, balance)
    _, train, val, balance = best
    return train.reset_index(drop=True), val.reset_index(drop=True), balance


def check_balance(balance: dict, limits: dict) -> list[str]:
    return [f"{col}: train/val total variation {balance[col]:.3f} > {limit}"
            for col, limit in limits.items() if balance.get(col, 0) > limit]


def wilson(wins: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def xvx_table(states: pd.DataFrame) -> list[dict]:
    out = []
    for (ct, t), g in states.groupby(["ct_alive", "t_alive"]):
        wins, n = int(g.ct_win.sum()), int(len(g))
        lo, hi = wilson(wins, n)
        out.append({"state": f"{ct}v{t}", "ct_alive": int(ct), "t_alive": int(t), "rounds": n,
                    "ct_win_rate": round(wins / n, 4), "ci95_low": round(lo, 4), "ci95_high": round(hi, 4)})
    return out


def control_targets(completions: list[str], seed: int) -> list[str]:
    """The control arm's targets: the same completions, each moved to another example (a derangement where the
    data allow), so the text, its length and its tokens are the strategy arm's, and its link to the state is gone."""
    import random

    rng = random.Random(f"control:{seed}")
    order = list(range(len(completions)))
    rng.shuffle(order)
    # rotate one step along the shuffled order: no example keeps its own target (unless there is only one)
    moved = {order[i]: order[(i + 1) % len(order)] for i in range(len(order))}
    return [completions[moved[i]] for i in range(len(completions))]
