"""Key moments per round -> one snapshot row each with the full team-level state and the outcome.

Moments (as the research plan names them): `pre_round` (freeze end), `first_contact` (first damage
between enemies), `post_plant` (plant completed), and `sampled` every N seconds of live play.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from chimera.demos.canonical import TICKRATE, MatchTables
from chimera.schema import weapon_kind

ROUND_TIME_S = 115.0  # CS2 competitive round time after freeze end
BOMB_TIME_S = 40.0    # C4 timer after the plant
DEFUSE_S = {True: 5.0, False: 10.0}  # defuse time with / without a kit
RUN_SPEED = 250.0     # units per second, knife out: how long the nearest CT needs to reach the bomb
MOMENTS = ("pre_round", "first_contact", "post_plant", "sampled")


def moment_ticks(tables: MatchTables, round_row, sample_every_s: float | None) -> list[tuple[str, int]]:
    n, start, end = round_row.round_num, round_row.freeze_end_tick, round_row.end_tick
    out = [("pre_round", int(start))]
    dmg = tables.damages[(tables.damages.round_num == n) & (tables.damages.attacker_side != tables.damages.victim_side)
                         & tables.damages.attacker_side.notna() & tables.damages.victim_side.notna()]
    dmg = dmg[(dmg.tick >= start) & (dmg.tick <= end)]
    if len(dmg):
        out.append(("first_contact", int(dmg.tick.min())))
    plants = tables.bombs[(tables.bombs.round_num == n) & (tables.bombs.event == "planted")]
    if len(plants):
        out.append(("post_plant", int(plants.tick.min())))
    if sample_every_s:
        step = int(sample_every_s * TICKRATE)
        out += [("sampled", int(t)) for t in range(int(start) + step, int(end), step)]
    return out


def _team_state(players: pd.DataFrame, side: str) -> dict:
    team = players[players.side == side]
    alive = team[team.alive]
    primaries = [w for w in alive.weapon_primary if isinstance(w, str)]
    utility = [u for us in alive.utility for u in (us if us is not None else [])]
    prefix = side.lower()
    kinds = Counter(weapon_kind(w) for w in primaries)
    return {
        f"{prefix}_alive": int(len(alive)),
        f"{prefix}_health": int(alive.health.sum()),
        f"{prefix}_armor": int(alive.armor.sum()),
        f"{prefix}_money": int(team.money.sum()),
        f"{prefix}_equip": int(alive.equip_value.sum()),
        f"{prefix}_rifles": int(kinds["rifle"]),
        f"{prefix}_snipers": int(kinds["sniper"]),
        f"{prefix}_smgs": int(kinds["smg"] + kinds["heavy"]),
        f"{prefix}_weapons": sorted(primaries),
        f"{prefix}_utility": sorted(utility),
        f"{prefix}_utility_count": len(utility),
        f"{prefix}_kits": int(alive.has_kit.sum()),
        # per-player facts the team totals hide
        f"{prefix}_hp50": int((alive.health > 50).sum()),
        f"{prefix}_awps": int(sum(w == "AWP" for w in primaries)),
        # each alive player's own HUD (health, armor, money, primary): the screenshot-view model's viewpoints
        f"{prefix}_player_health": [int(v) for v in alive.health],
        f"{prefix}_player_armor": [int(v) for v in alive.armor],
        f"{prefix}_player_money": [int(v) for v in alive.money],
        f"{prefix}_player_weapon": [w if isinstance(w, str) else "" for w in alive.weapon_primary],
    }


def _plant_geometry(tables: MatchTables, rf: pd.DataFrame, plant_tick: int, players: pd.DataFrame,
                    time_left: float) -> dict:
    """Distance of the nearest alive CT to the planted bomb and whether a defuse still fits in the time left.

    The bomb lies where its carrier stood at the plant: no map data needed."""
    before = rf[(rf.tick <= plant_tick) & rf.has_bomb.astype(bool)]
    cts = players[(players.side == "CT") & players.alive]
    if not len(before) or not len(cts):
        return {"ct_bomb_dist": np.nan, "defuse_margin_s": np.nan}
    bomb = before[before.tick == before.tick.max()].iloc[0]
    dist = np.sqrt((cts.x - bomb.x) ** 2 + (cts.y - bomb.y) ** 2 + (cts.z - bomb.z) ** 2)
    nearest = int(np.argmin(dist.to_numpy()))
    kit = bool(cts.has_kit.iloc[nearest]) or bool(cts.has_kit.any())
    return {"ct_bomb_dist": float(dist.iloc[nearest]),
            "defuse_margin_s": float(time_left - dist.iloc[nearest] / RUN_SPEED - DEFUSE_S[kit])}


def _bomb_state(tables: MatchTables, n: int, tick: int, players: pd.DataFrame) -> tuple[str, str | None]:
    events = tables.bombs[(tables.bombs.round_num == n) & (tables.bombs.tick <= tick)].sort_values("tick")
    plants = events[events.event == "planted"]
    for final in ("defused", "exploded"):
        if (events.event == final).any():
            return final, (plants.site.iloc[-1] if len(plants) else None)
    if len(plants):
        return "planted", plants.site.iloc[-1]
    if players.has_bomb.any():
        return "carried", None
    return ("dropped" if len(events) and events.event.iloc[-1] == "dropped" else "carried"), None


def build_snapshots(tables: MatchTables, sample_every_s: float | None = 20.0) -> pd.DataFrame:
    rows = []
    frames = tables.frames
    by_round = {n: g for n, g in frames.groupby("round_num")}
    for r in tables.rounds.itertuples():
        rf = by_round.get(r.round_num)
        if rf is None or r.winner_side not in ("CT", "T"):
            continue
        ticks = np.sort(rf.tick.unique())
        plant_tick = None
        live = rf[rf.tick >= r.freeze_end_tick]
        deaths = live[~live.alive.astype(bool)].tick
        first_death = int(deaths.min()) if len(deaths) else None
        for moment, tick in moment_ticks(tables, r, sample_every_s):
            # the last recorded frame at or before the moment (8 Hz: within 1/8 s)
            at = ticks[ticks <= tick]
            if not len(at):
                continue
            frame_tick = int(at[-1])
            players = rf[rf.tick == frame_tick]
            bomb, site = _bomb_state(tables, r.round_num, tick, players)
            if moment == "post_plant" or (bomb == "planted" and plant_tick is None):
                plant_tick = tables.bombs[(tables.bombs.round_num == r.round_num)
                                          & (tables.bombs.event == "planted")].tick.min()
            elapsed = (tick - r.freeze_end_tick) / TICKRATE
            time_left = (BOMB_TIME_S - (tick - plant_tick) / TICKRATE) if bomb == "planted" else ROUND_TIME_S - elapsed
            time_left = max(float(time_left), 0.0)
            geometry = (_plant_geometry(tables, rf, plant_tick, players, time_left) if bomb == "planted"
                        else {"ct_bomb_dist": np.nan, "defuse_margin_s": np.nan})
            killed = first_death is not None and first_death <= frame_tick
            row = {"match_id": tables.match_id, "map_name": tables.map_name, "round_num": int(r.round_num),
                   "moment": moment, "tick": int(tick), "time_left_s": round(time_left, 2),
                   "elapsed_s": round(max(elapsed, 0.0), 2),
                   "since_first_kill_s": round((frame_tick - first_death) / TICKRATE, 2) if killed else np.nan,
                   **geometry,
                   "ct_score": int(r.ct_score_before), "t_score": int(r.t_score_before),
                   "bomb_status": bomb, "bomb_site": site,
                   **_team_state(players, "CT"), **_team_state(players, "T"),
                   "winner_side": r.winner_side, "end_reason": r.end_reason,
                   "ct_win": int(r.winner_side == "CT")}
            rows.append(row)
    return pd.DataFrame(rows)


def validate_snapshots(df: pd.DataFrame, min_rows: int = 1) -> None:
    """Fail loudly on counts and ranges."""
    if len(df) < min_rows:
        raise ValueError(f"snapshots: {len(df)} rows, expected at least {min_rows}")
    for side in ("ct", "t"):
        if not df[f"{side}_alive"].between(0, 5).all():
            raise ValueError(f"snapshots: {side}_alive outside 0-5")
        if not df[f"{side}_health"].between(0, 500).all():
            raise ValueError(f"snapshots: {side}_health outside 0-500")
    if not df.moment.isin(MOMENTS).all():
        raise ValueError(f"snapshots: unknown moments {set(df.moment) - set(MOMENTS)}")
    if not df.ct_win.isin([0, 1]).all():
        raise ValueError("snapshots: ct_win must be 0/1")
    dup = df.duplicated(["match_id", "round_num", "moment", "tick"]).sum()
    if dup:
        raise ValueError(f"snapshots: {dup} duplicate (match, round, moment, tick) rows")


def xvx_states(tables: MatchTables) -> pd.DataFrame:
    """Every (CT alive, T alive) state each round passed through during live play, with the outcome."""
    rows = []
    frames = tables.frames[tables.frames.alive]
    for r in tables.rounds.itertuples():
        if r.winner_side not in ("CT", "T"):
            continue
        live = frames[(frames.round_num == r.round_num) & (frames.tick >= r.freeze_end_tick) & (frames.tick <= r.end_tick)]
        counts = live.groupby(["tick", "side"]).size().unstack(fill_value=0)
        for side in ("CT", "T"):
            if side not in counts:
                counts[side] = 0
        seen = set(zip(counts["CT"], counts["T"]))
        rows += [{"match_id": tables.match_id, "round_num": int(r.round_num), "ct_alive": int(ct), "t_alive": int(t),
                  "ct_win": int(r.winner_side == "CT")} for ct, t in seen if ct >= 1 and t >= 1]
    return pd.DataFrame(rows, columns=["match_id", "round_num", "ct_alive", "t_alive", "ct_win"])
