"""The truth labeler: synthetic frames get their exact game_state from the renderer, and analysis/advice
from the rule-based strategist, grounded in the demo-trained win-probability model when it exists."""

from __future__ import annotations

import json

from chimera.prompts import PROMPT_HASH
from chimera.schema import Analysis, GameState
from chimera.strategist import Context, analyse

LABELER = "truth"
LABELER_VERSION = "1"


def truth_label(image_id: str, truth_json: str, extras: dict | None = None, winprob_model=None) -> dict:
    state = GameState.model_validate(json.loads(truth_json))
    extras = extras or {}
    side = state.player_side
    own = extras.get("ct_score" if side == "CT" else "t_score")
    enemy = extras.get("t_score" if side == "CT" else "ct_score")
    time_left = extras.get("bomb_time_left_s") or extras.get("time_left_s")
    p_win = None
    if winprob_model is not None and side in ("CT", "T"):
        from chimera.demos.winprob import p_side_wins

        p_win = p_side_wins(winprob_model, state, own_score=own or 0, enemy_score=enemy or 0,
                            time_left_s=time_left if time_left is not None else 60.0)
    ctx = Context(round_num=extras.get("round_num"), own_score=own, enemy_score=enemy, time_left_s=time_left,
                  p_win=p_win)
    analysis, advice = analyse(state, ctx)
    label = Analysis(game_state=state, analysis=analysis, advice=advice)
    return {"id": image_id, "labeler": LABELER, "model": f"{LABELER}-v{LABELER_VERSION}", "prompt_hash": PROMPT_HASH,
            "analysis": label.model_dump(mode="json"), "errors": [], "p_win": p_win}
