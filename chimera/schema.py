"""The output contract: one `Analysis` JSON object per screenshot.

Everything else derives from this file: the prompts show `example_analysis()` and `FIELD_DOCS`, Claude's
tool input schema is `analysis_json_schema()`, evaluation walks `GAME_STATE_FIELDS`, rewards reuse the
same parser. Every game_state field may be null: null means "cannot be read from the image", which is a
different answer from a wrong value.

Decision on alive counts: `alive_teammates` counts the player's teammates *excluding* the player (0-4),
because the HUD shows the player's own health separately from the team bar; `alive_enemies` is 0-5.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MONEY_CAP = 16000  # competitive CS2 caps money here; larger values are legal (casual/practice) but flagged


class RoundPhase(str, Enum):
    buy = "buy"
    freezetime = "freezetime"
    playing = "playing"
    post_plant = "post_plant"
    round_end = "round_end"
    warmup = "warmup"
    unknown = "unknown"


class Side(str, Enum):
    CT = "CT"
    T = "T"
    spectator = "spectator"
    unknown = "unknown"


class BombStatus(str, Enum):
    carried = "carried"
    dropped = "dropped"
    planted = "planted"
    defused = "defused"
    exploded = "exploded"
    not_visible = "not_visible"
    unknown = "unknown"


class Site(str, Enum):
    A = "A"
    B = "B"
    none = "none"
    unknown = "unknown"


class Economy(str, Enum):
    eco = "eco"
    force_buy = "force-buy"
    half_buy = "half-buy"
    full_buy = "full-buy"
    save = "save"
    pistol = "pistol"
    unknown = "unknown"


class Importance(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"
    unknown = "unknown"  # not assessed (the perceiving base reads the HUD and judges nothing)


# --------------------------------------------------------------------------------------------------
# Canonical names. Keys are what we write; values are the aliases models, demos and HUDs use.
# --------------------------------------------------------------------------------------------------

# canonical -> (kind, sides that can buy it, price, aliases)
WEAPONS: dict[str, tuple[str, str, int, tuple[str, ...]]] = {
    # pistols
    "Glock-18": ("pistol", "T", 200, ("glock", "glock18", "weapon_glock")),
    "USP-S": ("pistol", "CT", 200, ("usp", "usp_silencer", "usps", "usp-s silencer")),
    "P2000": ("pistol", "CT", 200, ("hkp2000", "p2k")),
    "P250": ("pistol", "both", 300, ()),
    "Dual Berettas": ("pistol", "both", 300, ("elite", "dualies", "dual_berettas", "berettas")),
    "Five-SeveN": ("pistol", "CT", 500, ("fiveseven", "five_seven", "57")),
    "Tec-9": ("pistol", "T", 500, ("tec9",)),
    "CZ75-Auto": ("pistol", "both", 500, ("cz75a", "cz75", "cz")),
    "Desert Eagle": ("pistol", "both", 700, ("deagle", "desert_eagle", "deag")),
    "R8 Revolver": ("pistol", "both", 600, ("revolver", "r8")),
    # SMGs
    "MAC-10": ("smg", "T", 1050, ("mac10",)),
    "MP9": ("smg", "CT", 1250, ()),
    "MP7": ("smg", "both", 1500, ()),
    "MP5-SD": ("smg", "both", 1500, ("mp5sd", "mp5")),
    "UMP-45": ("smg", "both", 1200, ("ump45", "ump")),
    "P90": ("smg", "both", 2350, ()),
    "PP-Bizon": ("smg", "both", 1400, ("bizon", "ppbizon")),
    # rifles
    "Galil AR": ("rifle", "T", 1800, ("galilar", "galil")),
    "FAMAS": ("rifle", "CT", 2050, ()),
    "AK-47": ("rifle", "T", 2700, ("ak47", "ak")),
    "M4A4": ("rifle", "CT", 3100, ("m4a1",)),  # the game's internal name for the M4A4 is "m4a1"
    "M4A1-S": ("rifle", "CT", 2900, ("m4a1_silencer", "m4a1s", "m4a1-s", "m4a1 silencer")),
    "SG 553": ("rifle", "T", 3000, ("sg556", "sg553", "krieg")),
    "AUG": ("rifle", "CT", 3300, ()),
    "SSG 08": ("sniper", "both", 1700, ("ssg08", "scout", "ssg")),
    "AWP": ("sniper", "both", 4750, ()),
    "G3SG1": ("sniper", "T", 5000, ("g3sg1 auto",)),
    "SCAR-20": ("sniper", "CT", 5000, ("scar20",)),
    # heavy
    "Nova": ("heavy", "both", 1050, ()),
    "XM1014": ("heavy", "both", 2000, ("xm", "autoshotgun")),
    "Sawed-Off": ("heavy", "T", 1100, ("sawedoff", "sawed_off")),
    "MAG-7": ("heavy", "CT", 1300, ("mag7",)),
    "M249": ("heavy", "both", 5200, ()),
    "Negev": ("heavy", "both", 1700, ()),
    # other
    "Knife": ("melee", "both", 0, ("knife", "knife_t", "bayonet", "karambit", "butterfly_knife",
                                   "m9_bayonet", "skeleton_knife", "nomad_knife", "talon_knife")),
    "Zeus x27": ("taser", "both", 200, ("taser", "zeus")),
    "C4": ("bomb", "T", 0, ("c4", "bomb", "weapon_c4")),
}

UTILITY: dict[str, tuple[int, tuple[str, ...]]] = {
    "Smoke Grenade": (300, ("smoke", "smokegrenade", "smoke_grenade")),
    "Flashbang": (200, ("flash", "flashbang", "flash_bang")),
    "HE Grenade": (300, ("he", "hegrenade", "he_grenade", "frag")),
    "Molotov": (400, ("molotov", "molly", "molotov_cocktail")),
    "Incendiary Grenade": (500, ("incgrenade", "incendiary", "inc", "incendiary_grenade")),
    "Decoy Grenade": (50, ("decoy", "decoy_grenade")),
}

PRIMARY_KINDS = {"smg", "rifle", "sniper", "heavy"}


def _norm_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower().removeprefix("weapon_"))


def _alias_table(table: dict[str, tuple]) -> dict[str, str]:
    index: dict[str, str] = {}
    for canonical, row in table.items():
        for name in (canonical, *row[-1]):
            index[_norm_key(name)] = canonical
    return index


_WEAPON_INDEX = _alias_table(WEAPONS)
_UTILITY_INDEX = _alias_table(UTILITY)


def canonical_weapon(name: str | None) -> str | None:
    """'m4a1_silencer', 'M4A1-S', 'm4a1s' -> 'M4A1-S'. Unknown names are returned stripped, unchanged."""
    if name is None:
        return None
    text = str(name).strip()
    if not text or text.lower() in {"none", "null", "n/a", "unknown"}:
        return None
    return _WEAPON_INDEX.get(_norm_key(text), text)


def canonical_utility(name: str) -> str:
    text = str(name).strip()
    return _UTILITY_INDEX.get(_norm_key(text), text)


def weapon_kind(name: str | None) -> str | None:
    row = WEAPONS.get(canonical_weapon(name) or "")
    return row[0] if row else None


def is_known_weapon(name: str | None) -> bool:
    return canonical_weapon(name) in WEAPONS


# --------------------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class GameState(_Strict):
    map_name: str | None = Field(None, description="Map, e.g. de_mirage; null when it cannot be told")
    round_phase: RoundPhase | None = Field(None, description="Phase of the round")
    player_side: Side | None = Field(None, description="Side of the player whose view this is")
    player_health: int | None = Field(None, ge=0, le=100, description="Health shown bottom-left, 0-100")
    player_armor: int | None = Field(None, ge=0, le=100, description="Armor shown beside health, 0-100")
    player_money: int | None = Field(
        None, ge=0, le=65535,
        description=f"Money shown on the HUD; competitive caps at {MONEY_CAP}, larger values are flagged")
    team_money_total: int | None = Field(None, ge=0, le=5 * 65535, description="Sum of the team's money if shown")
    weapon_primary: str | None = Field(None, description="Canonical primary weapon name, e.g. AK-47, M4A1-S")
    weapon_secondary: str | None = Field(None, description="Canonical pistol name, e.g. USP-S, Glock-18")
    utility: list[str] | None = Field(None, description="Grenades held, canonical names")
    alive_teammates: int | None = Field(None, ge=0, le=4, description="Teammates alive, not counting the player")
    alive_enemies: int | None = Field(None, ge=0, le=5, description="Enemies alive")
    bomb_status: BombStatus | None = Field(None, description="Bomb state as far as the HUD tells")
    site: Site | None = Field(None, description="Bombsite the action is at, if any")
    visible_enemies: int | None = Field(None, ge=0, le=5, description="Enemies visible on screen")

    @field_validator("player_health", "player_armor", "player_money", "team_money_total", "alive_teammates",
                     "alive_enemies", "visible_enemies", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        if isinstance(value, bool):  # Python's bool is an int: `true` would otherwise read as health 1
            raise ValueError("a boolean is not a number")
        return value

    @field_validator("weapon_primary", "weapon_secondary", mode="before")
    @classmethod
    def _weapon_alias(cls, value: Any) -> Any:
        return canonical_weapon(value) if isinstance(value, str) else value

    @field_validator("utility", mode="before")
    @classmethod
    def _utility_alias(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [canonical_utility(v) for v in value if isinstance(v, str) and v.strip()]
        return value


class StrategicAnalysis(_Strict):
    situation_summary: str = Field(..., description="One or two sentences on the situation")
    economy_assessment: Economy = Field(..., description="The player's team's buy")
    round_importance: Importance = Field(..., description="How much this round matters")
    immediate_threats: list[str] = Field(default_factory=list, description="Threats now, short phrases")
    opportunities: list[str] = Field(default_factory=list, description="Openings now, short phrases")


class Advice(_Strict):
    primary_action: str = Field(..., description="What to do now, imperative")
    reasoning: str = Field(..., description="Why, grounded in what the HUD shows")
    fallback: str = Field(..., description="What to do if the primary action fails")
    callout: str = Field(..., description="A short team callout")


class Analysis(_Strict):
    game_state: GameState
    analysis: StrategicAnalysis
    advice: Advice


def unassessed(game_state: GameState) -> Analysis:
    """What the HUD shows and nothing more: analysis and advice left unassessed (empty texts, unknown enums).
    The target of perception pretraining (chimera/training/perception.py): it reads, it does not judge."""
    return Analysis(game_state=game_state,
                    analysis=StrategicAnalysis(situation_summary="", economy_assessment="unknown",
                                               round_importance="unknown"),
                    advice=Advice(primary_action="", reasoning="", fallback="", callout=""))


SECTIONS: dict[str, type[BaseModel]] = {"game_state": GameState, "analysis": StrategicAnalysis, "advice": Advice}
GAME_STATE_FIELDS: tuple[str, ...] = tuple(GameState.model_fields)
NUMERIC_FIELDS = tuple(f for f in GAME_STATE_FIELDS
                       if GameState.model_fields[f].annotation == (int | None))
LIST_FIELDS = ("utility",)
CATEGORICAL_FIELDS = tuple(f for f in GAME_STATE_FIELDS if f not in NUMERIC_FIELDS and f not in LIST_FIELDS)


def analysis_json_schema() -> dict[str, Any]:
    """JSON Schema of `Analysis`, self-contained (no $ref), as Claude's tool input schema wants it."""
    schema = Analysis.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(dict(defs[node["$ref"].split("/")[-1]]))
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


# Constrained decoding bounds every string and list, so an answer always fits a known token budget. Free text
# is printable ASCII without quote or backslash: one byte per character, no escapes, so bytes bound tokens.
DECODING_LIMITS = {"text_chars": {"situation_summary": 240, "primary_action": 160, "reasoning": 160,
                                  "fallback": 160, "callout": 60, "map_name": 32},
                   "list_items": {"immediate_threats": 4, "opportunities": 4, "utility": 5},
                   "list_item_chars": 80}
_PLAIN_TEXT = r"^[ !#-\[\]-~]*$"


def numeric_range(name: str) -> tuple[float | None, float | None]:
    """A game_state number's bounds as GameState declares them (ge, le); None where it declares none."""
    low = high = None
    for constraint in GameState.model_fields[name].metadata:
        low, high = getattr(constraint, "ge", low), getattr(constraint, "le", high)
    return low, high


def decoding_json_schema() -> dict[str, Any]:
    """`analysis_json_schema()` as constrained decoding takes it: every field required (written, null allowed),
    canonical weapon and grammar names as enums, strings and lists bounded, compact separators (to_json's)."""
    schema = analysis_json_schema()
    limits = DECODING_LIMITS

    def bound(name: str, node: dict) -> dict:
        if name in ("weapon_primary", "weapon_secondary"):
            kinds = {"weapon_primary": lambda k: k != "pistol", "weapon_secondary": lambda k: k == "pistol"}[name]
            return {"anyOf": [{"enum": [w for w, (kind, *_) in WEAPONS.items() if kinds(kind)]}, {"type": "null"}]}
        if name == "utility":
            return {"anyOf": [{"type": "array", "items": {"enum": list(UTILITY)}, "maxItems": limits["list_items"][name]},
                              {"type": "null"}]}
        if name in limits["list_items"]:
            return {"type": "array", "maxItems": limits["list_items"][name],
                    "items": {"type": "string", "maxLength": limits["list_item_chars"], "pattern": _PLAIN_TEXT}}
        if name in limits["text_chars"]:
            text = {"type": "string", "maxLength": limits["text_chars"][name], "pattern": _PLAIN_TEXT}
            return {"anyOf": [text, {"type": "null"}]} if "anyOf" in node else text
        return node

    def walk(node: dict) -> dict:
        if node.get("type") == "object":
            props = {k: bound(k, walk(v)) for k, v in node["properties"].items()}
            return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
        return {k: v for k, v in node.items() if k not in ("default", "title", "description")}

    out = walk(schema)
    out["x-guidance"] = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
    return out


def decoding_token_bound() -> int:
    """Most tokens a schema-constrained answer can take: the bytes of the longest answer the decoding schema allows
    (a byte-level tokenizer never spends less than one byte per token), plus the end-of-text token."""
    def longest(node: dict) -> str:
        if "anyOf" in node:
            return max((longest(n) for n in node["anyOf"]), key=len)
        if "enum" in node:
            return json.dumps(max(node["enum"], key=lambda v: len(json.dumps(v))))
        kind = node.get("type")
        if kind == "object":
            return "{" + ",".join(f'"{k}":{longest(v)}' for k, v in node["properties"].items()) + "}"
        if kind == "array":
            return "[" + ",".join([longest(node["items"])] * node["maxItems"]) + "]"
        if kind == "string":
            return '"' + "x" * node["maxLength"] + '"'
        if kind == "integer":
            return str(-abs(int(node.get("maximum", 10**9))))
        return "null"

    return len(longest(decoding_json_schema()).encode()) + 1


def field_docs() -> str:
    """Every field with its type and meaning, one per line: what prompts show the model."""
    lines = []
    for section, model in SECTIONS.items():
        for name, info in model.model_fields.items():
            choices = ""
            ann = str(info.annotation)
            for enum in (RoundPhase, Side, BombStatus, Site, Economy, Importance):
                if enum.__name__ in ann:
                    choices = " one of: " + " | ".join(e.value for e in enum)
            lines.append(f"- {section}.{name}: {info.description}.{choices}")
    return "\n".join(lines)


def example_analysis() -> Analysis:
    return Analysis(
        game_state=GameState(
            map_name=None, round_phase="playing", player_side="CT", player_health=76,
            player_armor=100, player_money=3350, team_money_total=None, weapon_primary="M4A1-S",
            weapon_secondary="USP-S", utility=["Smoke Grenade", "Flashbang"], alive_teammates=3,
            alive_enemies=4, bomb_status="not_visible", site=None, visible_enemies=1),
        analysis=StrategicAnalysis(
            situation_summary="4v4 on A with a rifle and two grenades; one enemy visible at ramp.",
            economy_assessment="full-buy", round_importance="high",
            immediate_threats=["enemy peeking from ramp"], opportunities=["smoke connector to cut rotation"]),
        advice=Advice(
            primary_action="Hold the angle on ramp and flash before re-peeking",
            reasoning="Even numbers: trading from a held angle beats a dry peek.",
            fallback="Fall back to jungle and wait for the rotate",
            callout="One ramp, I'm holding"))


# --------------------------------------------------------------------------------------------------
# Parsing model output
# --------------------------------------------------------------------------------------------------

@dataclass
class ParseResult:
    analysis: Analysis | None
    errors: list[str] = field(default_factory=list)   # field-by-field problems; empty when clean
    warnings: list[str] = field(default_factory=list)  # repairs applied and soft flags (e.g. money > cap)
    raw_json: dict | None = None                        # the object found, before validation
    dropped: list[str] = field(default_factory=list)    # game_state fields whose value did not validate

    @property
    def ok(self) -> bool:
        """An Analysis came out (fields whose values did not validate are null in it)."""
        return self.analysis is not None

    @property
    def schema_valid(self) -> bool:
        """The model's own output was a complete, valid Analysis: nothing dropped, closed, or repaired. This is
        what the evaluation calls schema compliance; `ok` is what it can score."""
        return self.ok and not self.dropped and not any(w.startswith(("closed", "replaced", "removed", "read as"))
                                                        for w in self.warnings)

    @property
    def json_found(self) -> bool:
        return self.raw_json is not None

    def sections_valid(self) -> dict[str, bool]:
        """Which sections validate on their own (partial credit for the format reward)."""
        out = {}
        for name, model in SECTIONS.items():
            part = (self.raw_json or {}).get(name)
            try:
                model.model_validate(_coerce_section(name, part) if isinstance(part, dict) else part)
                out[name] = isinstance(part, dict)
            except ValidationError:
                out[name] = False
        return out


    def game_state_fields(self) -> dict[str, Any]:
        """The game_state fields that validate one by one, even when the whole object does not: lets the
        evaluation give per-field credit to output that is JSON but not a valid Analysis."""
        if self.analysis is not None:
            return self.analysis.game_state.model_dump(mode="json")
        part = (self.raw_json or {}).get("game_state")
        if not isinstance(part, dict):
            return {}
        out = {}
        for key, value in _coerce_section("game_state", part).items():
            if key not in GameState.model_fields:
                continue
            try:
                out[key] = GameState.model_validate({key: value}).model_dump(mode="json")[key]
            except ValidationError:
                continue
        return out


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_OBJECT_START = re.compile(r"\{\s*[\"'}]")  # a '{' that opens an object: skips runs of '{{{{' in junk
_MAX_CANDIDATES = 50
_MAX_REPAIR = 200_000  # characters: regex repairs and the Python-literal reading only below this, so junk stays cheap


def _spans(text: str):
    """Where an answer may start: fenced blocks first, then each plausible '{' in the text, lazily (one slice at
    a time, at most _MAX_CANDIDATES): '{"' repeated a million times costs no more than one answer."""
    from itertools import islice

    yield from (m.group(1) for m in _FENCE.finditer(text))
    yield from (text[m.start():] for m in islice(_OBJECT_START.finditer(text), _MAX_CANDIDATES))


def _repair(span: str) -> tuple[str, list[str]]:
    """What models commonly break that JSON parsers refuse: single quotes, Python literals, trailing commas."""
    notes, fixed = [], span
    if "'" in fixed and '"' not in fixed:
        fixed = fixed.replace("'", '"')
        notes.append("replaced single quotes")
    for py, js in (("None", "null"), ("True", "true"), ("False", "false")):
        new = re.sub(rf"(?<=[:\[,\s]){py}(?=[,\]\}}\s])", js, fixed)
        if new != fixed:
            notes.append(f"replaced {py} with {js}")
            fixed = new
    new = re.sub(r",\s*([}\]])", r"\1", fixed)
    if new != fixed:
        notes.append("removed trailing commas")
        fixed = new
    new = re.sub(r"(?<=[:\[,\s])(-?\d{19,})(?=[\s,\]}]|$)", r'"\1"', fixed)  # beyond any field's range, and
    if new != fixed:                                                     # past 4,300 digits unparseable
        notes.append("replaced an over-long number")
        fixed = new
    return fixed, notes


def _drop_uncertain_field(obj: dict) -> None:
    """In a truncated object, the last field of the innermost open object may be cut: a number (3 of 3350)
    or a list ([Smoke Grenade] of [Smoke Grenade, Flashbang]). Drop it unless it is provably complete: a
    string (pydantic-core already drops a cut one), true, false or null."""
    node = obj
    while isinstance(node, dict) and node:
        key = list(node)[-1]
        value = node[key]
        if isinstance(value, dict) and value:
            node = value
            continue
        if not isinstance(value, (str, bool, type(None))):
            del node[key]
        return


def _decode(span: str) -> tuple[dict | None, list[str]]:
    """One JSON object from the start of `span`, by pydantic-core (linear time, partial JSON allowed, text
    after the object ignored). A truncated answer keeps what was complete: pydantic-core drops a cut string,
    and `_drop_uncertain_field` the number or list at the cut."""
    from pydantic_core import from_json

    attempts = [(span, [])] + ([_repair(span)] if len(span) <= _MAX_REPAIR else [])  # real answers are a few kB
    for candidate, notes in attempts:
        try:
            obj = from_json(candidate, allow_partial=True)
        except ValueError:
            continue
        if obj == {} and candidate.lstrip("{ \n\t").startswith("'"):
            continue  # single-quoted keys: not JSON; the Python-literal reading below gets the answer
        if not isinstance(obj, dict):
            return None, []
        try:
            json.JSONDecoder().raw_decode(candidate)  # whole: the object closed before the text ended
            return obj, notes
        except (ValueError, RecursionError):
            _drop_uncertain_field(obj)
            return obj, notes + ["closed truncated output"]
    return _python_literal(span)


def _python_literal(span: str) -> tuple[dict | None, list[str]]:
    """A complete answer written as a Python dict (mixed quotes, None/True/False), read by the stdlib's safe
    literal parser; bounded in size, so adversarial input stays cheap."""
    import ast

    end = span.rfind("}")
    if end < 0 or end > _MAX_REPAIR:
        return None, []
    try:
        obj = ast.literal_eval(span[:end + 1])
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None, []
    return (obj, ["read as a Python literal"]) if isinstance(obj, dict) else (None, [])


def json_object_closed(text: str) -> bool:
    """True once the first object in the text is complete JSON (a stopping rule for generation)."""
    start = text.find("{")
    if start < 0:
        return False
    try:
        json.JSONDecoder().raw_decode(text, start)
        return True
    except (ValueError, RecursionError):
        return False


_ENUM_ALIASES = {
    "economy_assessment": {"force": "force-buy", "forcebuy": "force-buy", "force_buy": "force-buy",
                           "full": "full-buy", "fullbuy": "full-buy", "full_buy": "full-buy",
                           "half": "half-buy", "halfbuy": "half-buy", "half_buy": "half-buy", "semi": "half-buy"},
    "player_side": {"ct": "CT", "t": "T", "counter-terrorist": "CT", "terrorist": "T"},
    "site": {"a": "A", "b": "B"},
    "round_phase": {"post-plant": "post_plant", "postplant": "post_plant", "freeze": "freezetime",
                    "live": "playing", "round-end": "round_end"},
    "bomb_status": {"not visible": "not_visible", "not-visible": "not_visible", "none": "not_visible"},
}


def _coerce_section(name: str, part: dict) -> dict:
    """Lenient fixes that keep meaning: enum spellings, numeric strings, scalar->list."""
    out = dict(part)
    for key, value in part.items():
        aliases = _ENUM_ALIASES.get(key)
        if aliases and isinstance(value, str):
            out[key] = aliases.get(value.strip().lower(), value.strip())
        elif name == "game_state" and key in NUMERIC_FIELDS and isinstance(value, str):
            digits = re.sub(r"[$,\s]", "", value)
            if re.fullmatch(r"[0-9]{1,9}", digits):  # ASCII digits only: "²".isdigit() is True, int("²") fails
                out[key] = int(digits)
            else:
                out[key] = None if digits.lower() in {"", "null", "unknown"} else value
        elif name == "game_state" and key in NUMERIC_FIELDS and isinstance(value, float) and value.is_integer():
            out[key] = int(value)
        elif (key in LIST_FIELDS or key in {"immediate_threats", "opportunities"}) and isinstance(value, str):
            out[key] = [value]
    return out


def parse_model_output(text: Any) -> ParseResult:
    """Find, repair, coerce and validate an `Analysis` in model text. Never raises."""
    try:
        return _parse(text)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises on model text"
        return ParseResult(None, [f"parser error: {type(exc).__name__}: {exc}"])


def _parse(text: Any) -> ParseResult:
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    obj, notes = None, []
    for span in _spans(text):
        obj, notes = _decode(span)
        if obj is not None and any(k in obj for k in SECTIONS):
            break
        obj = None
    if obj is None:
        return ParseResult(None, ["no JSON object found" if "{" not in text else "JSON could not be parsed"])

    errors, warnings, dropped = [], list(notes), []
    clean: dict[str, Any] = {}
    for name, model in SECTIONS.items():
        part = obj.get(name)
        if not isinstance(part, dict):
            errors.append(f"{name}: missing" if part is None else f"{name}: expected an object")
            continue
        part = _coerce_section(name, part)
        for key in [k for k in part if k not in model.model_fields]:
            warnings.append(f"{name}.{key}: unknown field dropped")
            part.pop(key)
        try:
            clean[name] = model.model_validate(part)
        except ValidationError as exc:
            if name == "game_state":  # every field is optional: a bad value costs that field only
                bad = {str(err["loc"][0]) for err in exc.errors()}
                for err in exc.errors():
                    warnings.append(f"game_state.{err['loc'][0]}: dropped ({err['msg']})")
                dropped += sorted(bad)
                clean[name] = model.model_validate({k: v for k, v in part.items() if k not in bad})
                continue
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                errors.append(f"{name}.{loc}: {err['msg']}")
    for key in obj:
        if key not in SECTIONS:
            warnings.append(f"{key}: unknown top-level field dropped")
    if errors:
        return ParseResult(None, errors, warnings, obj, dropped)
    analysis = Analysis(**clean)
    money = analysis.game_state.player_money
    if money is not None and money > MONEY_CAP:
        warnings.append(f"game_state.player_money: {money} is above the competitive cap {MONEY_CAP}")
    for slot in ("weapon_primary", "weapon_secondary"):
        name = getattr(analysis.game_state, slot)
        if name is not None and not is_known_weapon(name):
            warnings.append(f"game_state.{slot}: unknown weapon {name!r}")
    return ParseResult(analysis, [], warnings, obj, dropped)


def to_json(analysis: Analysis) -> str:
    return analysis.model_dump_json(indent=None)

