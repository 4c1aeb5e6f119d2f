"""Adapter: CS2 `.dem` files through awpy 3.x -> canonical tables.

awpy opens a demo lazily and raises `InvalidDemoError` on the first access of a dataset, not at open:
every access is wrapped so a broken demo becomes one clear `DemoError` naming the file, and the caller
goes on with the next file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from chimera.demos.canonical import (BOMB_COLUMNS, DAMAGE_COLUMNS, FRAME_COLUMNS, ROUND_COLUMNS, DemoError,
                                     MatchTables, norm_side)
from chimera.schema import canonical_weapon

# awpy bomb event names -> canonical
BOMB_EVENTS = {"bomb_pickup": "picked_up", "bomb_dropped": "dropped", "bomb_beginplant": "plant_begin",
               "bomb_planted": "planted", "bomb_begindefuse": "defuse_begin", "bomb_defused": "defused",
               "bomb_exploded": "exploded", "pickup": "picked_up", "drop": "dropped", "plant": "planted",
               "defuse": "defused", "finish_plant": "planted", "explode": "exploded"}
GRENADE_COLUMNS = {"smoke_grenades": "Smoke Grenade", "flashbangs": "Flashbang", "he_grenades": "HE Grenade",
                   "decoy_grenades": "Decoy Grenade"}


def _dataset(demo, name: str, path: Path, **kwargs):
    import awpy

    try:
        value = getattr(demo, name)
        return (value(**kwargs) if callable(value) else value).to_pandas()
    except awpy.InvalidDemoError as exc:
        raise DemoError(f"{path}: awpy cannot parse {name}: {exc}") from None


def load_dem(path: str | Path, sample_every_ticks: int = 8) -> MatchTables:
    import awpy

    path = Path(path)
    if not path.exists():
        raise DemoError(f"{path}: no such file")
    try:
        demo = awpy.Demo(path)
        header = demo.header
    except (awpy.InvalidDemoError, ValueError, OSError) as exc:
        raise DemoError(f"{path}: not a readable CS2 demo ({exc})") from None
    match_id, map_name = path.stem, header.get("map_name") or "unknown"

    rounds = _dataset(demo, "rounds", path)
    round_rows = []
    ct_score = t_score = 0
    for r in rounds.itertuples():
        winner = norm_side(r.winner_side)
        round_rows.append({"match_id": match_id, "map_name": map_name, "round_num": int(r.round_num),
                           "start_tick": int(r.start_tick), "freeze_end_tick": int(r.freeze_end_tick),
                           "end_tick": int(r.end_tick), "ct_score_before": ct_score, "t_score_before": t_score,
                           "winner_side": winner, "end_reason": r.reason_name})
        ct_score += winner == "CT"
        t_score += winner == "T"
    rounds_df = pd.DataFrame(round_rows, columns=ROUND_COLUMNS)

    def round_of(tick: int) -> int | None:
        for row in round_rows:
            if row["start_tick"] <= tick <= row["end_tick"]:
                return row["round_num"]
        return None

    snaps = _dataset(demo, "snapshots", path, every=sample_every_ticks)
    players = _dataset(demo, "players", path)
    snaps["side"] = snaps["side"].map(norm_side)
    snaps = snaps[snaps["side"].notna()]  # spectators and unassigned slots
    # Ticks outside any complete round (warm-up, short clips) are kept as round 0; snapshots skip them.
    snaps["round_num"] = snaps["tick"].map(lambda t: round_of(t) or 0)
    ids = {sid: i for i, sid in enumerate(players["steamid"])}

    def utility(row) -> list[str]:
        out = [name for col, name in GRENADE_COLUMNS.items() for _ in range(int(row[col] or 0))]
        fire = int(row["fire_grenades"] or 0)
        out += ["Molotov" if row["side"] == "T" else "Incendiary Grenade"] * fire
        return out

    frames = pd.DataFrame({
        "match_id": match_id, "round_num": snaps["round_num"].astype(int), "tick": snaps["tick"].astype(int),
        "player_id": snaps["steamid"].map(lambda s: ids.get(s, -1)).astype(int), "side": snaps["side"],
        "alive": snaps["health"] > 0, "health": snaps["health"].clip(0, 100), "armor": snaps["armor"].clip(0, 100),
        "money": snaps["money"], "equip_value": snaps["equipment_value"],
        "weapon_active": snaps["active_weapon"].map(canonical_weapon),
        "weapon_primary": snaps["primary_weapon"].map(canonical_weapon),
        "weapon_secondary": snaps["secondary_weapon"].map(canonical_weapon),
        "utility": [utility(r) for _, r in snaps.iterrows()],
        "has_kit": snaps["has_defuser"].astype(bool), "has_bomb": snaps["has_bomb"].astype(bool),
        "x": snaps["x"], "y": snaps["y"], "z": snaps["z"], "place": None})

    bombs = _dataset(demo, "bomb", path)
    bomb_rows = [{"match_id": match_id, "round_num": round_of(int(b.tick)), "tick": int(b.tick),
                  "event": BOMB_EVENTS.get(str(b.event), str(b.event)),
                  "site": (str(b.bombsite or "").upper().replace("BOMBSITE", "").strip() or None)}
                 for b in bombs.itertuples()]
    damages = _dataset(demo, "damages", path)
    damage_rows = [{"match_id": match_id, "round_num": round_of(int(d.tick)), "tick": int(d.tick),
                    "attacker_side": norm_side(d.attacker_side), "victim_side": norm_side(d.victim_side),
                    "damage": int(d.dmg_health)} for d in damages.itertuples() if "tick" in damages.columns]
    return MatchTables(match_id, map_name, "awpy", frames[FRAME_COLUMNS], rounds_df,
                       pd.DataFrame([b for b in bomb_rows if b["round_num"] is not None], columns=BOMB_COLUMNS),
                       pd.DataFrame([d for d in damage_rows if d["round_num"] is not None], columns=DAMAGE_COLUMNS)
                       ).validate()

