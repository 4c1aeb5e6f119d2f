"""The trivial baselines every report carries: constant, OCR, hybrid."""

import copy
import json
import random
from dataclasses import replace

from chimera.evaluation.baselines import constant_analysis, hybrid_record, ocr_record
from chimera.evaluation.metrics import evaluate
from chimera.evaluation.ocr import read_hud
from chimera.schema import example_analysis
from chimera.screens.hud import render_frame, sample_state, sample_style

BASE = example_analysis().model_dump(mode="json")


def label(**gs):
    a = copy.deepcopy(BASE)
    a["game_state"].update(gs)
    return a


def test_constant_takes_each_fields_mode_among_values_and_never_a_null():
    train = [label(player_health=100, site=None), label(player_health=100, site=None),
             label(player_health=40, site="B"), label(player_health=7, site=None, map_name=None)]
    answer = constant_analysis(train)
    assert answer["game_state"]["player_health"] == 100
    assert answer["game_state"]["site"] == "B"  # null is the commonest label, but a null never scores
    assert answer["game_state"]["map_name"] is None  # no label has a value: nothing to predict
    assert answer["analysis"] == BASE["analysis"]


def test_hybrid_takes_only_confident_ocr_numbers():
    ocr = ocr_record("f", {"player_money": {"value": 4550, "confidence": 0.99},
                           "player_health": {"value": 12, "confidence": 0.5}, "player_armor": {"value": None,
                                                                                              "confidence": 0.0}})
    model = {"id": "f", "analysis": label(player_money=100, player_health=90)}
    merged = hybrid_record(model, ocr, 0.9, "B")
    assert merged["analysis"]["game_state"]["player_money"] == 4550
    assert merged["analysis"]["game_state"]["player_health"] == 90 and merged["ocr_fields_used"] == ["player_money"]
    # a model with no valid answer: OCR's numbers alone, scored field by field
    partial = hybrid_record({"id": "f", "analysis": None, "raw_text": "garbage"}, ocr, 0.9, "B")
    assert json.loads(partial["raw_text"]) == {"game_state": {"player_money": 4550}}
    summary, _ = evaluate({"f": partial}, {"f": {"id": "f", "analysis": label(player_money=4550)}})
    assert summary["fields"]["player_money"]["hit"] == 1 and summary["schema_compliance"]["value"] == 0.0


def test_ocr_reads_the_rendered_hud_numbers():
    read = 0
    for seed in range(6):
        rng = random.Random(seed)
        state, extras = sample_state(rng)
        image, _ = render_frame(state, extras, replace(sample_style(rng), width=1280, height=720).clean())
        got = read_hud(image)
        read += got["player_money"]["value"] == state.player_money
        assert set(got) == {"player_money", "player_armor", "player_health"}
    assert read >= 5  # bench/bench_ocr.py: 24/25 on styled frames


def test_ocr_detector_input_size_comes_from_params(monkeypatch):
    """params.yaml ocr.det_min_side reaches RapidOCR's detector (its default, 736, blows a HUD strip up 5x)."""
    import chimera.evaluation.ocr as ocr
    from chimera.evaluation.ocr import engine, ocr_config

    built = []
    monkeypatch.setattr(ocr, "engine", lambda *args: built.append(args) or engine(*args))  # the real engine, watched
    rng = random.Random(0)
    state, extras = sample_state(rng)
    image, _ = render_frame(state, extras, replace(sample_style(rng), width=1280, height=720).clean())
    ocr.read_hud(image, ocr_config({"det_min_side": 320}))
    assert built and all(args[1] == 320 for args in built)  # both regions read at the configured size
    assert ocr_config({"det_min_side": 320}).det_min_side == 320
    assert ocr_config({}).det_min_side == 256  # the baseline's own size when params name none
    assert engine(1, 320).text_det.limit_side_len == 320 and engine(1, 320).text_det.limit_type == "min"
    assert engine(1, None).text_det.limit_side_len == 736  # None: RapidOCR's own


def test_ocr_drops_a_money_reading_the_schema_cannot_hold():
    """A misread "$73050" (more than the schema's 65,535) is no reading: the hybrid would put it into an Analysis
    that cannot validate (it crashed the pipeline once). "$7350" in the same place is read."""
    from PIL import Image, ImageDraw

    from chimera.screens.hud import _font

    def money_strip(text):
        image = Image.new("RGB", (1280, 720), (40, 40, 40))
        ImageDraw.Draw(image).text((20, 650), text, font=_font("DejaVuSans-Bold.ttf", 40), fill=(255, 255, 255))
        return image

    assert read_hud(money_strip("$7350"))["player_money"]["value"] == 7350
    assert read_hud(money_strip("$73050"))["player_money"] == {"value": None, "confidence": 0.0}


def test_ocr_reads_the_numbers_the_schema_has_no_field_for():
    """Ammo, round timer and score: read from their fixed regions (scored in bench/bench_ocr.py)."""
    from chimera.evaluation.ocr import read_hud_extras

    checked, right = 0, 0
    for seed in range(8):
        rng = random.Random(seed)
        state, extras = sample_state(rng)
        if extras.active_slot == "knife" or state.bomb_status == "planted":
            continue
        image, _ = render_frame(state, extras, replace(sample_style(rng), width=1920, height=1080).clean())
        got = read_hud_extras(image)
        own, enemy = (extras.ct_score, extras.t_score) if state.player_side == "CT" else (extras.t_score, extras.ct_score)
        right += [got["ammo_clip"], got["round_time_s"], got["score_own"], got["score_enemy"]] == \
            [extras.ammo_clip, int(extras.time_left_s), own, enemy]
        checked += 1
    assert checked >= 3 and right >= checked - 1  # OCR is not perfect: bench/bench_ocr.py has the rates
