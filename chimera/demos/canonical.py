"""The canonical demo schema. Every source (awpy .dem, cs2-demo-format zip) is an adapter into it.

frames:  one row per (match, round, tick, player): side, alive, health, armor, money, equipment value,
         active/primary/secondary weapon, utility, kit, bomb, position, place.
rounds:  one row per (match, round): map, ticks, scores before the round, winner side, end reason.
bombs:   one row per bomb event: picked_up | dropped | plant_begin | planted | defuse_begin | defused | exploded.
damages: one row per damage event between players: attacker/victim side (for first contact).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

FRAME_COLUMNS = ["match_id", "round_num", "tick", "player_id", "side", "alive", "health", "armor", "money",
                 "equip_value", "weapon_active", "weapon_primary", "weapon_secondary", "utility", "has_kit",
                 "has_bomb", "x", "y", "z", "place"]
ROUND_COLUMNS = ["match_id", "map_name", "round_num", "start_tick", "freeze_end_tick", "end_tick",
                 "ct_score_before", "t_score_before", "winner_side", "end_reason"]
BOMB_COLUMNS = ["match_id", "round_num", "tick", "event", "site"]
DAMAGE_COLUMNS = ["match_id", "round_num", "tick", "attacker_side", "victim_side", "damage"]
SIDES = ("CT", "T")
TICKRATE = 64


class DemoError(ValueError):
    """A demo that cannot be read: the message names the file and the problem."""


@dataclass
class MatchTables:
    match_id: str
    map_name: str
    source: str
    frames: pd.DataFrame
    rounds: pd.DataFrame
    bombs: pd.DataFrame
    damages: pd.DataFrame

    def validate(self) -> "MatchTables":
        where = f"{self.source}:{self.match_id}"
        for name, cols in (("frames", FRAME_COLUMNS), ("rounds", ROUND_COLUMNS), ("bombs", BOMB_COLUMNS),
                           ("damages", DAMAGE_COLUMNS)):
            missing = set(cols) - set(getattr(self, name).columns)
            if missing:
                raise DemoError(f"{where}: {name} lacks columns {sorted(missing)}")
        f = self.frames
        if len(f):
            if not f["side"].isin(SIDES).all():
                raise DemoError(f"{where}: frames have sides other than CT/T: {sorted(set(f['side']) - set(SIDES))}")
            if not f["health"].between(0, 100).all() or not f["armor"].between(0, 100).all():
                raise DemoError(f"{where}: health/armor outside 0-100")
            if (f["money"] < 0).any():
                raise DemoError(f"{where}: negative money")
        if len(self.rounds) and not self.rounds["winner_side"].isin(SIDES).all():
            raise DemoError(f"{where}: rounds with no CT/T winner")
        return self


def norm_side(value) -> str | None:
    text = str(value or "").strip().lower()
    if text in {"ct", "counter-terrorist", "counterterrorist", "3"}:
        return "CT"
    if text in {"t", "terrorist", "2"}:
        return "T"
    return None
