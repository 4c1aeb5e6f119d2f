import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chimera.schema import (
    MONEY_CAP, Analysis, GameState, analysis_json_schema, canonical_utility, canonical_weapon,
    example_analysis, parse_model_output, to_json,
)


def test_ranges_are_enforced():
    with pytest.raises(ValidationError):
        GameState(player_health=101)
    with pytest.raises(ValidationError):
        GameState(player_armor=-1)
    with pytest.raises(ValidationError):
        GameState(alive_teammates=5)  # the player is not counted: at most 4
    with pytest.raises(ValidationError):
        GameState(alive_enemies=6)
    with pytest.raises(ValidationError):
        GameState(round_phase="halftime")
    assert GameState().player_health is None  # every field may be null


@pytest.mark.parametrize("alias,canonical", [
    ("M4A1-S", "M4A1-S"), ("m4a1_silencer", "M4A1-S"), ("m4a1s", "M4A1-S"), ("weapon_m4a1_silencer", "M4A1-S"),
    ("m4a1", "M4A4"), ("ak47", "AK-47"), ("AK-47", "AK-47"), ("usp_silencer", "USP-S"), ("hkp2000", "P2000"),
    ("deagle", "Desert Eagle"), ("galilar", "Galil AR"), ("elite", "Dual Berettas"), ("karambit", "Knife"),
    ("none", None), ("", None),
])
def test_weapon_aliases(alias, canonical):
    assert canonical_weapon(alias) == canonical


def test_utility_aliases_and_model_normalisation():
    assert canonical_utility("incgrenade") == "Incendiary Grenade"
    assert canonical_utility("smokegrenade") == "Smoke Grenade"
    state = GameState(weapon_primary="ak47", utility=["flashbang", "molly", "hegrenade"])
    assert state.weapon_primary == "AK-47"
    assert state.utility == ["Flashbang", "Molotov", "HE Grenade"]


def test_json_schema_is_self_contained_and_strict():
    schema = analysis_json_schema()
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text
    assert set(schema["required"]) == {"game_state", "analysis", "advice"}
    gs = schema["properties"]["game_state"]
    assert gs["additionalProperties"] is False
    assert set(gs["properties"]) >= {"player_health", "bomb_status", "utility", "visible_enemies"}


def test_parser_finds_json_in_prose_and_fences():
    text = to_json(example_analysis())
    for wrapped in (text, f"Here you go:\n```json\n{text}\n```\nGood luck!", f"Analysis: {text} -- end"):
        result = parse_model_output(wrapped)
        assert result.ok, result.errors
        assert result.analysis == example_analysis()


def test_parser_repairs_common_damage():
    obj = example_analysis().model_dump(mode="json")
    trailing = json.dumps(obj).replace('"callout": "One ramp, I\'m holding"}',
                                       '"callout": "One ramp",}')
    assert parse_model_output(trailing).ok
    single = str(obj).replace("I'm", "I am")  # Python repr: single quotes, None
    single = str(json.loads(json.dumps(obj).replace("I'm", "I am")))
    result = parse_model_output(single)
    assert result.ok, result.errors
    assert "replaced single quotes" in result.warnings


def test_parser_reports_problems_field_by_field():
    obj = example_analysis().model_dump(mode="json")
    obj["game_state"]["player_health"] = 250
    obj["analysis"]["round_importance"] = "enormous"
    del obj["advice"]
    result = parse_model_output(json.dumps(obj))
    assert not result.ok
    assert result.dropped == ["player_health"]  # an optional field's bad value costs that field only
    assert any(w.startswith("game_state.player_health: dropped") for w in result.warnings)
    assert any(e.startswith("analysis.round_importance") for e in result.errors)
    assert "advice: missing" in result.errors
    assert result.sections_valid() == {"game_state": False, "analysis": False, "advice": False}


def test_parser_coerces_known_spellings_and_flags_money_over_cap():
    obj = example_analysis().model_dump(mode="json")
    obj["game_state"].update(player_money="$16,500", player_side="ct", weapon_primary="m4a1_silencer")
    obj["analysis"]["economy_assessment"] = "force"
    result = parse_model_output(json.dumps(obj))
    assert result.ok, result.errors
    gs = result.analysis.game_state
    assert (gs.player_money, gs.player_side, gs.weapon_primary) == (16500, "CT", "M4A1-S")
    assert result.analysis.analysis.economy_assessment == "force-buy"
    assert any(str(MONEY_CAP) in w for w in result.warnings)


def test_truncated_output_keeps_what_was_complete():
    text = to_json(example_analysis())
    result = parse_model_output(text[: len(text) // 3])
    assert not result.ok
    assert result.json_found and "game_state" in result.raw_json
    assert "closed truncated output" in result.warnings
    assert "advice: missing" in result.errors


def test_one_bad_value_drops_that_field_only():
    text = to_json(example_analysis())
    assert '"player_health":76' in text
    for bad in ('"\u00b2"', "9" * 4400, "true", "[1]", '{"x": 1}'):  # superscript 2, a 4,400-digit number, ...
        result = parse_model_output(text.replace('"player_health":76', f'"player_health":{bad}'))
        assert result.ok, (bad, result.errors)
        assert result.analysis.game_state.player_health is None and result.dropped == ["player_health"]
        assert result.analysis.game_state.player_money == 3350  # the rest of the answer is kept
        assert not result.schema_valid
    assert parse_model_output(text).schema_valid


def test_a_valid_answer_after_deep_junk_is_found():
    text = "{" * 5000 + " oops " + to_json(example_analysis())
    assert parse_model_output(text).analysis == example_analysis()


def test_no_truncation_point_yields_a_wrong_value():
    """Cut a valid answer at every character: a field either has its true value or is absent, never the
    front of a number (3 of 3350)."""
    truth = example_analysis().model_dump(mode="json")
    text = to_json(example_analysis())
    for cut in range(1, len(text)):
        result = parse_model_output(text[:cut])
        gs = (result.raw_json or {}).get("game_state") or {}
        fields = result.game_state_fields()
        for name, value in fields.items():
            assert value == truth["game_state"][name] or value is None and name not in gs, (cut, name, value)


# ---- property tests --------------------------------------------------------------------------------

enum_values = {
    "round_phase": ["buy", "freezetime", "playing", "post_plant", "round_end", "warmup", "unknown", None],
    "player_side": ["CT", "T", "spectator", "unknown", None],
    "bomb_status": ["carried", "dropped", "planted", "defused", "exploded", "not_visible", "unknown", None],
    "site": ["A", "B", "none", "unknown", None],
}
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
maybe_int = lambda lo, hi: st.one_of(st.none(), st.integers(lo, hi))  # noqa: E731

game_states = st.builds(
    GameState,
    map_name=st.one_of(st.none(), st.sampled_from(["de_mirage", "de_inferno", "de_nuke"])),
    round_phase=st.sampled_from(enum_values["round_phase"]),
    player_side=st.sampled_from(enum_values["player_side"]),
    player_health=maybe_int(0, 100), player_armor=maybe_int(0, 100), player_money=maybe_int(0, 16000),
    team_money_total=maybe_int(0, 80000),
    weapon_primary=st.sampled_from([None, "AK-47", "M4A1-S", "AWP", "FAMAS"]),
    weapon_secondary=st.sampled_from([None, "USP-S", "Glock-18", "Desert Eagle"]),
    utility=st.one_of(st.none(), st.lists(st.sampled_from(["Smoke Grenade", "Flashbang", "Molotov"]), max_size=4)),
    alive_teammates=maybe_int(0, 4), alive_enemies=maybe_int(0, 5),
    bomb_status=st.sampled_from(enum_values["bomb_status"]), site=st.sampled_from(enum_values["site"]),
    visible_enemies=maybe_int(0, 5),
)
analyses = st.builds(
    Analysis, game_state=game_states,
    analysis=st.fixed_dictionaries({
        "situation_summary": text, "economy_assessment": st.sampled_from(
            ["eco", "force-buy", "half-buy", "full-buy", "save", "pistol", "unknown"]),
        "round_importance": st.sampled_from(["low", "medium", "high", "critical"]),
        "immediate_threats": st.lists(text, max_size=3), "opportunities": st.lists(text, max_size=3)}),
    advice=st.fixed_dictionaries({"primary_action": text, "reasoning": text, "fallback": text, "callout": text}),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(analyses, text, text)
def test_valid_objects_round_trip_through_prose(analysis, before, after):
    before, after = before.replace("{", ""), after.replace("{", "")
    result = parse_model_output(f"{before}\n{to_json(analysis)}\n{after}")
    assert result.ok, result.errors
    assert result.analysis == analysis


@settings(max_examples=300)
@given(st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1")), st.none(), st.integers()))
def test_parser_never_raises_on_arbitrary_text(garbage):
    result = parse_model_output(garbage)
    assert result.ok or result.errors


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(analyses, st.integers(0, 2000), st.sampled_from(["", ",", "'", "```", "}}}", "{"]))
def test_parser_never_raises_on_damaged_json(analysis, cut, junk):
    text = to_json(analysis)
    result = parse_model_output(text[:cut] + junk + text[cut:cut + 50])
    assert result.ok or result.errors


def test_game_state_fields_salvages_what_validates_on_its_own():
    broken = example_analysis().model_dump(mode="json")
    broken["game_state"].update(player_health=250, weapon_primary="ak47", player_money="$3,350")
    del broken["advice"]
    result = parse_model_output(json.dumps(broken))
    assert not result.ok
    fields = result.game_state_fields()
    assert "player_health" not in fields  # out of range: dropped, not clipped
    assert fields["weapon_primary"] == "AK-47" and fields["player_money"] == 3350
    assert fields["player_side"] == "CT"
    assert parse_model_output("no json here").game_state_fields() == {}
    assert parse_model_output(to_json(example_analysis())).game_state_fields() == \
        example_analysis().game_state.model_dump(mode="json")


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(analyses, st.integers(0, 2000))
def test_salvaged_fields_are_always_valid_game_state_values(analysis, cut):
    text = to_json(analysis)[:cut]
    fields = parse_model_output(text).game_state_fields()
    GameState.model_validate(fields)
    truth = analysis.game_state.model_dump(mode="json")
    for key, value in fields.items():
        complete = f'"{key}":{json.dumps(truth[key], separators=(",", ":"))}' in text
        # a value written out in full is salvaged exactly; only the one cut mid-way may differ
        assert value == truth[key] or not complete, (key, value, truth[key])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(analyses, st.data(), st.sampled_from(["", "Sure! ", "```json\n", "{{{{ ", "[1, 2] "]))
def test_a_cut_answer_never_yields_a_wrong_value(analysis, data, prefix):
    """Truncation by max_new_tokens at any point of game_state, after any preamble: each field is its true value
    or absent."""
    text = to_json(analysis)
    truth = analysis.model_dump(mode="json")["game_state"]
    cut = data.draw(st.integers(1, text.index('"analysis"')))  # inside game_state, where the numbers are
    fields = parse_model_output(prefix + text[:cut]).game_state_fields()
    assert all(value == truth[name] for name, value in fields.items())


@settings(max_examples=100)
@given(analyses, st.sampled_from(["true", "false", "1.5", '"\u00b2"', "-3", "1e400", "9" * 30, "[]", '"NaN"']))
def test_a_bad_value_costs_that_field_only(analysis, bad):
    text = to_json(analysis).replace('"player_armor":', '"player_armor":' + bad + ',"_was":', 1)
    result = parse_model_output(text)
    assert result.ok and result.analysis.game_state.player_armor is None
    assert result.analysis.game_state.player_money == analysis.game_state.player_money
