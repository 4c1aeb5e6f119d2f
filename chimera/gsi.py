"""CS2 Game State Integration (GSI): the game's own JSON about the player, turned into our game_state.

With a `gamestate_integration_chimera.cfg` in the game's cfg folder (`gsi_config`), CS2 POSTs JSON to a local HTTP
endpoint several times a second (`chimera serve` receives it at /gsi and logs it to JSONL). The payload format is
Valve's (developer.valvesoftware.com/wiki/Counter-Strike:_Global_Offensive_Game_State_Integration): `provider`
(steamid, unix `timestamp`), `map` (name, phase, round, team_ct/team_t score), `round` (phase freezetime | live |
over, bomb planted | exploded | defused when it applies), `player` (steamid, team CT | T, `state` health, armor,
money..., `weapons` weapon_0.. with name like `weapon_ak47`, type Rifle | Pistol | Grenade | C4 | Knife...,
state active | holstered), and `auth.token` from the cfg.

A player's GSI says nothing about teammates or enemies alive, team money, the site or visible enemies: those fields
stay null in a GSI label (unknown, not zero), for Claude or a person to fill.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from pathlib import Path

from chimera.schema import GameState, canonical_utility, canonical_weapon

GSI_FIELDS = ("round_phase", "player_side", "player_health", "player_armor", "player_money",
              "weapon_primary", "weapon_secondary", "utility", "bomb_status")
PRIMARY_TYPES = {"Rifle", "SniperRifle", "Submachine Gun", "Shotgun", "Machine Gun"}
ROUND_PHASES = {"freezetime": "buy", "live": "playing", "over": "round_end"}


def gsi_config(uri: str, token: str, name: str = "Chimera") -> str:
    """The cfg file CS2 reads (put it in game/csgo/cfg/ as gamestate_integration_chimera.cfg)."""
    data = ["provider", "map", "round", "player_id", "player_state", "player_weapons", "player_match_stats",
            "map_round_wins", "bomb", "phase_countdowns"]
    lines = [f'"{name}"', "{", f'    "uri"       "{uri}"', '    "timeout"   "5.0"', '    "buffer"    "0.1"',
             '    "throttle"  "0.5"', '    "heartbeat" "30.0"', '    "auth"', "    {", f'        "token" "{token}"', "    }",
             '    "data"', "    {"] + [f'        "{d}" "1"' for d in data] + ["    }", "}", ""]
    return "\n".join(lines)


def game_state_from_gsi(payload: dict) -> tuple[GameState, list[str]]:
    """(game_state, the fields GSI gave) from one payload; what GSI does not know stays null."""
    player, rnd, mp = payload.get("player") or {}, payload.get("round") or {}, payload.get("map") or {}
    state, weapons = player.get("state") or {}, (player.get("weapons") or {}).values()
    fields: dict = {}  # no map_name: GSI knows it, the screenshot's HUD does not show it, so the label leaves it null
    if mp.get("phase") == "warmup":
        fields["round_phase"] = "warmup"
    elif rnd.get("phase") in ROUND_PHASES:
        fields["round_phase"] = "post_plant" if rnd.get("bomb") == "planted" else ROUND_PHASES[rnd["phase"]]
    if player.get("team") in ("CT", "T"):
        fields["player_side"] = player["team"]
    for ours, theirs in (("player_health", "health"), ("player_armor", "armor"), ("player_money", "money")):
        if isinstance(state.get(theirs), int):
            fields[ours] = state[theirs]
    if weapons:
        primary = [w for w in weapons if w.get("type") in PRIMARY_TYPES]
        pistols = [w for w in weapons if w.get("type") == "Pistol"]
        fields["weapon_primary"] = canonical_weapon(primary[0]["name"].removeprefix("weapon_")) if primary else None
        fields["weapon_secondary"] = canonical_weapon(pistols[0]["name"].removeprefix("weapon_")) if pistols else None
        grenades = []
        for w in weapons:
            if w.get("type") == "Grenade":
                grenades += [canonical_utility(w["name"].removeprefix("weapon_"))] * max(1, int(w.get("ammo_reserve") or 1))
        fields["utility"] = sorted(grenades)
        if rnd.get("bomb") not in ("planted", "exploded", "defused") and any(w.get("type") == "C4" for w in weapons):
            fields["bomb_status"] = "carried"
    if rnd.get("bomb") in ("planted", "exploded", "defused"):
        fields["bomb_status"] = rnd["bomb"]
    known = [f for f in GSI_FIELDS if f in fields]
    return GameState.model_validate(fields), known


def payload_time(payload: dict, received: float | None = None) -> float:
    """When the game sent it: provider.timestamp (unix seconds), else when it was received."""
    t = (payload.get("provider") or {}).get("timestamp")
    return float(t) if isinstance(t, (int, float)) else float(received or 0.0)


class GsiStore:
    """The latest GSI state per player (steamid) with its time; every accepted payload appended to a JSONL log."""

    def __init__(self, token: str | None, log_path: str | Path | None = None):
        """token None: nothing is accepted (CS2 always sends the cfg's token; a server without one takes none)."""
        self.token, self.log_path = token, Path(log_path) if log_path else None
        self.latest: dict[str, dict] = {}
        self._lock = threading.Lock()

    def accept(self, payload: dict) -> bool:
        """False when the auth token does not match the cfg's (the payload is dropped)."""
        if self.token is None or (payload.get("auth") or {}).get("token") != self.token:
            return False
        received = time.time()
        player = (payload.get("player") or {}).get("steamid") or (payload.get("provider") or {}).get("steamid") or "?"
        clean = {k: v for k, v in payload.items() if k != "auth"}  # the token never lands in a log
        with self._lock:
            self.latest[player] = {"received": received, "time": payload_time(payload, received), "payload": clean}
            if self.log_path:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.log_path, "a") as fh:
                    fh.write(json.dumps({"received": received, "payload": clean}) + "\n")
        return True

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {k: dict(v) for k, v in self.latest.items()}


def read_gsi_log(path: str | Path) -> list[tuple[float, dict]]:
    """(time, payload) sorted by time; a malformed line is a ValueError naming the file and the line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no GSI log (chimera serve writes one with --gsi-log)")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            out.append((payload_time(entry["payload"], entry.get("received")), entry["payload"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a GSI log line ({type(exc).__name__}: {exc})") from None
    return sorted(out, key=lambda e: e[0])


def nearest_state(log: list[tuple[float, dict]], t: float, tolerance_s: float) -> tuple[float, dict] | None:
    """The logged payload nearest in time to t, if within tolerance_s."""
    times = [e[0] for e in log]
    i = bisect.bisect_left(times, t)
    best = min((log[j] for j in (i - 1, i) if 0 <= j < len(log)), key=lambda e: abs(e[0] - t), default=None)
    return best if best is not None and abs(best[0] - t) <= tolerance_s else None


def gsi_label(image_id: str, payload: dict, gap_s: float) -> dict:
    """A label record in the labelers' format: the game_state GSI gives (the rest null), analysis and advice from
    the rule strategist on exactly that state."""
    from chimera.prompts import PROMPT_HASH
    from chimera.schema import Analysis
    from chimera.strategist import Context, analyse

    state, known = game_state_from_gsi(payload)
    mp = payload.get("map") or {}
    side = state.player_side  # enum values are stored as strings (schema: use_enum_values)
    scores = {"CT": (mp.get("team_ct") or {}).get("score"), "T": (mp.get("team_t") or {}).get("score")}
    own = scores.get(side) if side else None
    enemy = scores.get("T" if side == "CT" else "CT") if side else None
    analysis, advice = analyse(state, Context(round_num=mp.get("round"), own_score=own, enemy_score=enemy))
    return {"id": image_id, "labeler": "gsi", "model": "gsi-v1", "prompt_hash": PROMPT_HASH,
            "analysis": Analysis(game_state=state, analysis=analysis, advice=advice).model_dump(mode="json"),
            "errors": [], "known_fields": known, "gsi_gap_s": round(gap_s, 3), "gsi_map": mp.get("name")}


def gsi_labels_for(ids, folder: str | Path) -> dict[str, dict]:
    """The GSI label records (chimera gsi-label) of these frame ids, from a folder of them; {} when none."""
    folder = Path(folder)
    wanted = set(ids)
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.stem in wanted:
            record = json.loads(path.read_text())
            if record.get("labeler") == "gsi" and record.get("analysis"):
                out[path.stem] = {k: v for k, v in record.items() if k != "path"}
    return out
