"""The prompts every model sees: Claude labeler, Qwen zero-shot, SFT and GRPO data.

Built from the schema, so a new field reaches every prompt at once. `PROMPT_HASH` is recorded in every
label and prediction: a prompt change invalidates caches and shows up in comparisons.
"""

from __future__ import annotations

import hashlib
import json

from chimera.schema import analysis_json_schema, example_analysis, field_docs

SYSTEM_PROMPT = f"""You are Chimera, a Counter-Strike 2 analyst. You look at one gameplay screenshot and \
return exactly one JSON object with three sections: game_state (what the HUD shows), analysis (the \
situation) and advice (what the player should do now).

Rules:
- Read game_state only from what is visible. If a field cannot be read, write null; never guess.
- Use canonical weapon names (AK-47, M4A1-S, AWP, USP-S, Glock-18, ...) and grenade names (Smoke Grenade,
  Flashbang, HE Grenade, Molotov, Incendiary Grenade, Decoy Grenade).
- alive_teammates excludes the player; money in dollars without symbols.
- Ground analysis and advice in the state: alive counts, economy, bomb, time. Be concrete and brief.

Fields:
{field_docs()}

Example output:
{json.dumps(example_analysis().model_dump(mode="json"), separators=(",", ":"))}"""

USER_PROMPT = "Analyze this Counter-Strike 2 screenshot. Answer with the JSON object only."

# Perception pretraining (chimera/training/perception.py): reading alone, analysis and advice left unassessed
PERCEPTION_PROMPT = ("Read the HUD of this Counter-Strike 2 screenshot. Answer with the JSON object; leave analysis "
                     "and advice unassessed.")
# ...and its reading phases: one HUD crop alone, its numbers (perception.reading)
READING_PROMPT = "Read the numbers on this part of the Counter-Strike 2 HUD. Answer with the JSON object."

# Single-question probes for zero-shot perception checks (issue: VLM probes). field -> question.
PROBE_QUESTIONS: dict[str, str] = {
    "weapon_primary": "What primary weapon is the player holding or carrying? Answer with the weapon name only.",
    "player_money": "How much money does the player have? Answer with a number only.",
    "player_health": "What is the player's health? Answer with a number only.",
    "alive_enemies": "How many enemies are alive? Answer with a number only.",
    "player_side": "Is the player CT or T? Answer CT or T.",
}

TOOL_NAME = "record_analysis"
TOOL_DESCRIPTION = "Record the structured analysis of the screenshot."


def prompt_hash() -> str:
    """Stable hash of everything that shapes the answer: prompts and output schema."""
    payload = json.dumps({"system": SYSTEM_PROMPT, "user": USER_PROMPT, "schema": analysis_json_schema()},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


PROMPT_HASH = prompt_hash()


def chat_messages(image=None, answer: str | None = None) -> list[dict]:
    """Conversational messages in the transformers/trl format; `image` may be a PIL image, a list of them (a model's
    view: chimera/vlm/views.py) or None."""
    images = image if isinstance(image, list) else ([image] if image is not None else [])
    user_content = [{"type": "image", "image": im} for im in images] + [{"type": "text", "text": USER_PROMPT}]
    messages = [{"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
                {"role": "user", "content": user_content}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages
