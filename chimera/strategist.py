"""A rule-based CS2 strategist: game state (+ context) -> StrategicAnalysis and Advice.

Used by the truth labeler (synthetic frames) and the strategy dataset (demo snapshots), so both speak the
same vocabulary. Every sentence is built from facts in the state (alive counts, money, weapons, bomb,
time, score, win probability), and the phrasing varies with a deterministic choice seeded by the state,
so labels are grounded and varied without being random.

CS2 economy facts used: MR12 (pistol rounds 1 and 13, match point at 12), full buy ~ rifle + armor +
utility (~$4000-5000 per player), loss bonus $1400 rising by $500 to $3400.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from chimera.schema import Advice, GameState, StrategicAnalysis, weapon_kind

FULL_BUY_MONEY = 4000
FORCE_MIN_MONEY = 2000
PISTOL_ROUNDS = (1, 13)
MATCH_POINT = 12


@dataclass
class Context:
    """What a screenshot may not show but a demo or the renderer knows."""
    round_num: int | None = None
    own_score: int | None = None
    enemy_score: int | None = None
    time_left_s: float | None = None
    p_win: float | None = None        # P(player's side wins), from the win-probability model
    loss_streak: int | None = None


def _rng(state: GameState, ctx: Context) -> random.Random:
    key = state.model_dump_json() + repr(ctx)
    return random.Random(int(hashlib.sha256(key.encode()).hexdigest()[:12], 16))


def economy(state: GameState, ctx: Context) -> str:
    if ctx.round_num in PISTOL_ROUNDS:
        return "pistol"
    kind = weapon_kind(state.weapon_primary)
    money = state.player_money
    if state.round_phase in ("buy", "freezetime") and kind is None and money is not None:
        # still buying: judge by what the money allows
        return "full-buy" if money >= FULL_BUY_MONEY else "force-buy" if money >= FORCE_MIN_MONEY else "eco"
    if kind in ("rifle", "sniper") and (state.player_armor or 0) > 0:
        return "full-buy"
    if kind in ("rifle", "sniper", "smg", "heavy"):
        return "force-buy" if (money or 0) < 1000 else "half-buy"
    if kind is None and money is not None:
        return "save" if money >= FULL_BUY_MONEY else "eco"
    return "unknown"


def importance(state: GameState, ctx: Context) -> str:
    own, enemy = ctx.own_score or 0, ctx.enemy_score or 0
    mates, enemies = state.alive_teammates, state.alive_enemies
    if MATCH_POINT in (own, enemy) or (mates == 0 and (enemies or 0) >= 1):
        return "critical"
    if state.bomb_status == "planted" or (own + enemy >= 18 and abs(own - enemy) <= 2) or ctx.round_num in PISTOL_ROUNDS:
        return "high"
    if mates is not None and enemies is not None and abs((mates + 1) - enemies) >= 3:
        return "low"
    return "medium"


def _numbers(state: GameState) -> tuple[int | None, int | None]:
    us = None if state.alive_teammates is None else state.alive_teammates + (1 if (state.player_health or 0) > 0 else 0)
    return us, state.alive_enemies


def analyse(state: GameState, ctx: Context | None = None) -> tuple[StrategicAnalysis, Advice]:
    ctx = ctx or Context()
    rng = _rng(state, ctx)
    pick = rng.choice
    side = state.player_side if state.player_side in ("CT", "T") else None
    us, them = _numbers(state)
    eco = economy(state, ctx)
    imp = importance(state, ctx)
    site = state.site if state.site in ("A", "B") else None
    bomb = state.bomb_status
    weapon = state.weapon_primary or state.weapon_secondary or "pistol"
    hp = state.player_health
    utility = state.utility or []

    # -- situation ------------------------------------------------------------------------------
    parts = []
    if us is not None and them is not None:
        parts.append(pick([f"{us}v{them}", f"{us} against {them}", f"{us}-on-{them}"]))
    if side:
        parts.append(f"on {side}")
    if bomb == "planted":
        parts.append(f"with the bomb planted{' on ' + site if site else ''}")
    elif bomb == "dropped":
        parts.append("with the bomb on the ground")
    elif bomb == "carried" and side == "T":
        parts.append("with the bomb still carried")
    summary = " ".join(parts) or "State partly unreadable"
    detail = []
    if hp is not None:
        detail.append(pick([f"{hp} HP", f"health at {hp}"]))
    detail.append(f"{weapon} in hand" if state.weapon_primary else f"only a {weapon}")
    if state.player_money is not None:
        detail.append(f"${state.player_money}")
    situation = f"{summary[0].upper()}{summary[1:]}; {', '.join(detail)}."
    if ctx.p_win is not None:
        situation += pick([f" Roughly {round(ctx.p_win * 100)}% to win from here.",
                           f" Win chance about {round(ctx.p_win * 100)}%."])

    # -- threats and opportunities ----------------------------------------------------------------
    threats, opportunities = [], []
    if state.visible_enemies:
        threats.append(pick([f"{state.visible_enemies} enemy in view", f"{state.visible_enemies} visible enemy"])
                       if state.visible_enemies == 1 else f"{state.visible_enemies} enemies in view")
    if hp is not None and hp < 40:
        threats.append(pick(["one-shot by most weapons", f"low health ({hp})"]))
    if us is not None and them is not None and them > us:
        threats.append(f"outnumbered {us}v{them}")
    if bomb == "planted" and side == "CT":
        threats.append("bomb timer running")
    if ctx.time_left_s is not None and ctx.time_left_s < 25 and side == "T" and bomb != "planted":
        threats.append("little time to plant")
    if us is not None and them is not None and us > them:
        opportunities.append(pick([f"man advantage {us}v{them}", f"numbers: {us} against {them}"]))
    if "Smoke Grenade" in utility:
        opportunities.append(pick(["smoke to cut a crossing", "smoke available to isolate an angle"]))
    if "Flashbang" in utility:
        opportunities.append(pick(["flash to win the next duel", "pop-flash before peeking"]))
    if bomb == "dropped":
        opportunities.append("loose bomb to deny or pick up" if side == "CT" else "recover the bomb")
    if eco in ("eco", "save"):
        opportunities.append("save money for a full buy next round")

    # -- advice ---------------------------------------------------------------------------------
    where = site or pick(["A", "B"]) if side == "T" else site
    if state.round_phase in ("buy", "freezetime"):
        if eco == "full-buy":
            action = f"Buy {'an M4A1-S' if side == 'CT' else 'an AK-47' if side == 'T' else 'a rifle'}, armor and utility"
        elif eco in ("eco", "save"):
            action = pick(["Save this round and buy only a pistol", "Eco: keep the money for next round"])
        elif eco == "pistol":
            action = pick(["Buy armor and a flash for the pistol round", "Buy kevlar and play together"])
        else:
            action = pick(["Force-buy with the team: SMG or Galil/FAMAS and armor", "Match the team's force buy"])
        reasoning = f"With ${state.player_money if state.player_money is not None else '?'} the team's economy calls for {'an' if eco[0] in 'aeiou' else 'a'} {eco} round."
        fallback = "Drop a weapon for a teammate who is short" if (state.player_money or 0) >= 5000 else "Stack with teammates and trade"
    elif bomb == "planted" and side == "CT":
        action = (pick([f"Retake {site or 'the site'} with your teammates", f"Group up and retake {site or 'the site'}"])
                  if (us or 1) > 1 else f"Play for time and defuse {site or ''} if the angles are clear".replace("  ", " "))
        reasoning = (f"The bomb is down; {us}v{them} on the retake" if us is not None and them is not None
                     else "The bomb is down and every second counts") + "."
        fallback = "Save the weapon if the retake is lost" if (them or 0) > (us or 0) else "Stick the defuse under a smoke"
    elif bomb == "planted" and side == "T":
        action = pick([f"Hold post-plant crossfires on {site or 'the site'}", "Play off the bomb and wait for the defuse"])
        reasoning = f"The clock favours the Ts; {them if them is not None else 'the'} CTs must come to you."
        fallback = "Fall back to a safe angle and let the timer run"
    elif side == "T":
        if us is not None and them is not None and us >= them:
            action = pick([f"Execute onto {where} with the bomb", f"Take {where} together and plant"])
        else:
            action = pick([f"Group up and hit {where} as one", f"Look for a pick before committing to {where}"])
        reasoning = (f"{us}v{them}: " if us is not None and them is not None else "") + (
            "trade kills and get the plant." if bomb != "dropped" else "get the bomb back first.")
        fallback = pick(["Fake and rotate to the other site", "Save if the site is lost"])
    else:  # CT or unknown side, live round
        action = (pick(["Hold your angle and wait for information", "Play a passive crossfire"])
                  if not state.visible_enemies else
                  pick(["Trade the visible enemy from cover", "Take the duel with a flash"]))
        reasoning = (f"{us}v{them}, " if us is not None and them is not None else "") + (
            "let them come to your crossfire." if (us or 0) >= (them or 0) else "avoid giving free kills.")
        fallback = pick(["Fall back towards a teammate", "Rotate early if the call comes"])
    if hp is not None and hp < 30 and "duel" in action:
        fallback = "Back off and let a healthier teammate peek"
    callout_bits = []
    if state.visible_enemies:
        callout_bits.append(f"{state.visible_enemies} here")
    if bomb == "planted" and site:
        callout_bits.append(f"bomb {site}")
    if hp is not None and hp < 50:
        callout_bits.append(f"I'm {hp}")
    if them is not None:
        callout_bits.append(f"{them} left")
    callout = ", ".join(callout_bits) or pick(["Nothing yet", "Holding"])
    return (StrategicAnalysis(situation_summary=situation, economy_assessment=eco, round_importance=imp,
                              immediate_threats=threats, opportunities=opportunities),
            Advice(primary_action=action, reasoning=reasoning, fallback=fallback, callout=callout))
