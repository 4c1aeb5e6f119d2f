"""Adapter: cs2-demo-format 3.0 zips (cs2df exporter) -> canonical tables.

replay.json holds per-round, per-player series at 8 Hz from freeze end. x/y/z/yaw/pitch/money/equipValue
are delta-encoded (cumulative sum gives the value); hp and armor are plain; flags bit0 = alive,
bit1 = has bomb, bit2 = has defuse kit; weapon and place are indices into weaponDict/placeDict (-1 = none).
The replay has the active weapon only, so primary/secondary come from player-economies (the buy at
freeze end); pickups during the round are not tracked.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from chimera.demos.canonical import (BOMB_COLUMNS, DAMAGE_COLUMNS, FRAME_COLUMNS, ROUND_COLUMNS, DemoError,
                                     MatchTables, norm_side)
from chimera.schema import canonical_utility, canonical_weapon, weapon_kind

DELTA_FIELDS = ("x", "y", "z", "yaw", "pitch", "money", "equipValue")
FLAG_ALIVE, FLAG_BOMB, FLAG_KIT = 1, 2, 4


def decode_series(player: dict) -> dict[str, np.ndarray]:
    """One player's replay arrays, deltas decoded."""
    out = {}
    for key, values in player.items():
        if key == "playerIndex" or key == "grenades":
            continue
        arr = np.asarray(values, dtype=np.int64)
        out[key] = np.cumsum(arr) if key in DELTA_FIELDS else arr
    return out


def _read(zf: zipfile.ZipFile, name: str, path: Path):
    try:
        return json.loads(zf.read(name))
    except KeyError:
        raise DemoError(f"{path}: {name} missing from the archive") from None
    except json.JSONDecodeError as exc:
        raise DemoError(f"{path}: {name} is not valid JSON ({exc})") from None


def load_cs2df(path: str | Path) -> MatchTables:
    """One match; anything malformed inside the archive (a missing key, arrays of unequal length, a wrong type)
    is one DemoError naming the file."""
    path = Path(path)
    try:
        return _load_cs2df(path)
    except DemoError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise DemoError(f"{path}: malformed cs2-demo-format data ({type(exc).__name__}: {exc})") from None


def _load_cs2df(path: Path) -> MatchTables:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DemoError(f"{path}: not a readable zip ({exc})") from None
    with zf:
        manifest = _read(zf, "manifest.json", path)
        if not str(manifest.get("schemaVersion", "")).startswith("cs2-demo-format/3"):
            raise DemoError(f"{path}: unsupported schema {manifest.get('schemaVersion')!r}")
        match = _read(zf, "match.json", path)
        players = _read(zf, "players.json", path)
        rounds = _read(zf, "rounds.json", path)
        economies = _read(zf, "player-economies.json", path)
        bombs = _read(zf, "bombs.json", path)
        damages = _read(zf, "damages.json", path)
        replay = _read(zf, "replay.json", path)

    match_id = path.stem
    map_name = match.get("mapName") or "unknown"  # never a blank name
    team_of = [p["teamKey"] for p in players]
    side_of = {}  # (round, teamKey) -> CT/T
    round_rows = []
    for r in rounds:
        n = r["roundNumber"]
        side_of[(n, "teamA")], side_of[(n, "teamB")] = norm_side(r["teamASide"]), norm_side(r["teamBSide"])
        a_is_ct = side_of[(n, "teamA")] == "CT"
        round_rows.append({
            "match_id": match_id, "map_name": map_name, "round_num": n, "start_tick": r["startTick"],
            "freeze_end_tick": r["freezeEndTick"], "end_tick": r["endTick"],
            "ct_score_before": r["teamAScoreBefore"] if a_is_ct else r["teamBScoreBefore"],
            "t_score_before": r["teamBScoreBefore"] if a_is_ct else r["teamAScoreBefore"],
            "winner_side": norm_side(r["winnerSide"]), "end_reason": r["endReason"]})

    loadout = {(e["roundNumber"], e["playerIndex"]): e for e in economies}
    weapon_names = replay["weaponDict"]
    place_names = replay["placeDict"]
    frame_parts = []
    for rd in replay["rounds"]:
        n, step, start = rd["roundNumber"], rd["tickStep"], rd["startTick"]
        count = rd["frameCount"]
        ticks = start + step * np.arange(count)
        for p in rd["players"]:
            idx = p["playerIndex"]
            s = decode_series(p)
            econ = loadout.get((n, idx), {})
            flags = s["flags"]
            frame_parts.append(pd.DataFrame({
                "match_id": match_id, "round_num": n, "tick": ticks, "player_id": idx,
                "side": side_of.get((n, team_of[idx])), "alive": (flags & FLAG_ALIVE) > 0,
                "health": s["hp"], "armor": s["armor"], "money": s["money"], "equip_value": s["equipValue"],
                "weapon_active": [canonical_weapon(weapon_names[w]) if w >= 0 else None for w in s["weapon"]],
                "weapon_primary": canonical_weapon(econ.get("primaryWeapon")),
                "weapon_secondary": canonical_weapon(econ.get("secondaryWeapon")),
                "utility": [[canonical_utility(g) for g in gs] for gs in p["grenades"]],
                "has_kit": (flags & FLAG_KIT) > 0, "has_bomb": (flags & FLAG_BOMB) > 0,
                "x": s["x"], "y": s["y"], "z": s["z"],
                "place": [place_names[i] if i >= 0 else None for i in s["place"]]}))
    frames = pd.concat(frame_parts, ignore_index=True) if frame_parts else pd.DataFrame(columns=FRAME_COLUMNS)
    # A carried primary the buy record missed (picked up earlier) shows as the active weapon: keep it.
    primary_active = frames["weapon_active"].map(lambda w: weapon_kind(w) in {"smg", "rifle", "sniper", "heavy"})
    frames.loc[primary_active & frames["weapon_primary"].isna(), "weapon_primary"] = frames["weapon_active"]

    bomb_rows = [{"match_id": match_id, "round_num": b["roundNumber"], "tick": b["tick"], "event": b["type"],
                  "site": (b.get("site") or "").upper() or None} for b in bombs]
    damage_rows = []
    for d in damages:
        a, v = d.get("attackerIndex"), d.get("victimIndex")
        if a is None or v is None:
            continue
        n = d["roundNumber"]
        damage_rows.append({"match_id": match_id, "round_num": n, "tick": d["tick"],
                            "attacker_side": side_of.get((n, team_of[a])), "victim_side": side_of.get((n, team_of[v])),
                            "damage": d["healthDamage"]})
    return MatchTables(
        match_id, map_name, "cs2df", frames[FRAME_COLUMNS],
        pd.DataFrame(round_rows, columns=ROUND_COLUMNS), pd.DataFrame(bomb_rows, columns=BOMB_COLUMNS),
        pd.DataFrame(damage_rows, columns=DAMAGE_COLUMNS)).validate()
