"""A label says only what its frame shows: every non-null field of a synthetic label is read back from the
pixels (OCR for text, colours for icons and portraits), never taken from the renderer's own word.

Frames are rendered clean (no blur or JPEG) at 1920x1080 with the sampled HUD scale and font, so a failure
means an element is missing, not that OCR struggled with compression. A box is read first by RapidOCR's recognizer
alone (the box is one line), then by its detector and recognizer, as it is and enlarged: a value counts as shown
when any of them reads it, and a box painted over is read by none.
"""

import random
import re
from dataclasses import replace
from difflib import SequenceMatcher

import numpy as np
import pytest
from PIL import ImageDraw

from chimera.evaluation.ocr import engine, read_text
from chimera.screens.hud import (BOMB_ICON, COLOR_CT, COLOR_T, PLANTED_ICON, enemy_silhouette, label_elements,
                                 render_frame, sample_state, sample_style)

N_STATES = 60
# The detector scales a crop's shorter side to this: a third of the time of RapidOCR's 736 for these tests, and the
# same readings on 180 frames once the recognizer alone has read the box first (BENCHMARKS.md, eighteenth session)
DET_MIN_SIDE = 320


def _recognized(image, box) -> str:
    """The box as one line of text, by the recognizer alone: the detector misses a lone glyph (a "0" armor)."""
    x0, y0, x1, y1 = box
    lines, _ = engine(-1, DET_MIN_SIDE)(np.asarray(image.crop((x0 - 4, y0 - 4, x1 + 4, y1 + 4)).convert("RGB")),
                                        use_det=False, use_cls=False)
    return " ".join(str(text) for text, _ in (lines or []))


def _text(image, box) -> str:
    x0, y0, x1, y1 = box  # the detector needs a margin of background around the text, but not the neighbours
    return " ".join(t for t, _, _ in read_text(image.crop((x0 - 10, y0 - 20, x1 + 10, y1 + 20)),
                                               det_min_side=DET_MIN_SIDE))


def _alnum(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _wide_text(image, box) -> str:
    """The box read again with more margin, three times larger: the detector can miss a lone small glyph ("0"
    armor) or drop a word of a small line ("Smoke Grenade" at 19 px read as "Grenade")."""
    x0, y0, x1, y1 = box
    wide = image.crop((x0 - 40, y0 - 30, x1 + 40, y1 + 30))
    return " ".join(t for t, _, _ in read_text(wide.resize((wide.width * 3, wide.height * 3)),
                                               det_min_side=DET_MIN_SIDE))


def _says(image, box, expected: str) -> bool:
    want = _alnum(expected)

    def matches(got: str) -> bool:
        return bool(want) and (want in got or SequenceMatcher(None, got, want).ratio() >= 0.8)

    return any(matches(_alnum(read(image, box))) for read in (_recognized, _text, _wide_text))


def _digits(text: str) -> int | None:
    digits = re.sub(r"\D", "", text)
    return int(digits) if digits else None


def _recognized_number(image, box) -> int | None:
    return _digits(_recognized(image, box).replace("O", "0").replace("o", "0"))


def _plain_number(image, box) -> int | None:
    return _digits(_text(image, box).replace("O", "0").replace("o", "0"))


def _wide_number(image, box) -> int | None:
    return _digits(_wide_text(image, box).replace("O", "0"))


def _number(image, box) -> int | None:
    """The first reading of the box that holds a number."""
    return next((n for read in (_recognized_number, _plain_number, _wide_number) if (n := read(image, box)) is not None),
                None)


def _reads(image, box, value: int) -> bool:
    """The number is read off the box by any reader (as `_says` reads text): the detector misreads a small number
    (the CS2 look's armor, inside its shield: "32" as "B2") that it reads three times larger, and misses a lone "0"
    that the recognizer reads."""
    return any(read(image, box) == value for read in (_recognized_number, _plain_number, _wide_number))


def _has_colour(image, box, colour, min_pixels: int = 20) -> bool:
    x0, y0, x1, y1 = (max(0, v) for v in box)
    pixels = np.asarray(image.crop((x0, y0, x1, y1)), dtype=np.int16)
    return int((np.abs(pixels - np.array(colour)).sum(axis=-1) <= 6).sum()) >= min_pixels


def _living_portraits(image, boxes, team: str) -> tuple[int, set]:
    """Living portraits are drawn in a team colour; dead ones grey. Sampled below the head circle."""
    count, colours = 0, set()
    for i in range(5):
        x0, y0, x1, y1 = boxes[f"portrait_{team}_{i}"]
        pixel = tuple(int(v) for v in image.getpixel(((x0 + x1) // 2, y1 - max(2, (y1 - y0) // 8))))
        distance = {name: sum(abs(a - b) for a, b in zip(pixel, colour)) for name, colour in
                    (("CT", COLOR_CT), ("T", COLOR_T))}  # portraits are drawn at alpha 230 over the scene
        name = min(distance, key=distance.get)
        if distance[name] <= 60:
            count += 1
            colours.add(name)
    return count, colours


def readback_problems(image, boxes, state, extras) -> list[str]:
    """Every labelled field whose element cannot be read back from the image (empty when all are)."""
    problems = []
    elements = label_elements(state, extras)
    gs = state.model_dump()
    for name, keys in elements.items():
        missing = [k for k in keys if k not in boxes]
        if missing:
            problems.append(f"{name}: no element {missing}")
            continue
        value = gs[name]
        ok = True
        if name in ("player_health", "player_armor"):
            ok = _reads(image, boxes[keys[0]], value)
        elif name == "player_money":
            ok = _reads(image, boxes["money"], value)
        elif name == "team_money_total":
            ok = sum(_number(image, boxes[k]) or 0 for k in keys) == value
        elif name in ("weapon_primary", "weapon_secondary"):
            ok = _says(image, boxes[keys[0]], value)
        elif name == "utility":
            ok = all(_says(image, boxes[k], g) for k, g in zip(keys, value)) if value else _says(image, boxes["knife"], "Knife")
        elif name == "site":
            ok = _says(image, boxes["site"], value)
        elif name in ("alive_teammates", "alive_enemies", "player_side"):
            own, own_colours = _living_portraits(image, boxes, "own")
            enemy, _ = _living_portraits(image, boxes, "enemy")
            ok = {"alive_teammates": own - 1 == value, "alive_enemies": enemy == value,
                  "player_side": own_colours == {value}}[name]
        elif name == "visible_enemies":
            colour = enemy_silhouette(COLOR_T if state.player_side == "CT" else COLOR_CT)
            ok = all(_has_colour(image, boxes[k], colour) for k in keys)
        elif name in ("round_phase", "bomb_status"):
            for key in keys:
                if key == "bomb_planted":
                    ok &= _has_colour(image, boxes[key], PLANTED_ICON)
                elif key == "bomb_radar":
                    ok &= _has_colour(image, boxes[key], BOMB_ICON)
                elif key == "bomb":
                    ok &= _says(image, boxes[key], "C4")
                elif key == "timer":
                    t = max(0, int(extras.time_left_s))
                    ok &= _alnum(_text(image, boxes[key])).endswith(f"{t % 60:02d}")
                elif key == "buy_hint":
                    ok &= _says(image, boxes[key], "BUY PHASE press B")
                elif key == "bomb_dropped":
                    ok &= _says(image, boxes[key], "The bomb has been dropped")
                elif key == "round_end_banner":
                    reason = {"defused": "defused", "exploded": "bombed"}.get(state.bomb_status, "win")
                    ok &= reason in _text(image, boxes[key]).lower()
        if not ok:
            problems.append(f"{name}={value!r}: not read back from {keys}")
    return problems


def _frame(seed, look="classic"):
    rng = random.Random(seed)
    state, extras = sample_state(rng)
    style = replace(sample_style(rng), width=1920, height=1080).clean()
    image, boxes = render_frame(state, extras, style, look=look)
    return state, extras, image, boxes


@pytest.mark.parametrize("seed", range(N_STATES))
def test_every_labelled_field_is_read_back_from_the_pixels(seed):
    state, extras, image, boxes = _frame(seed)
    assert readback_problems(image, boxes, state, extras) == []


@pytest.mark.parametrize("seed", range(20))
def test_the_cs2_look_shows_every_labelled_field_too(seed):
    """The CS2 look redraws the money and vitals (condensed, team-coloured, the armor small inside its shield): they
    are still read back from the pixels, and so is everything else."""
    state, extras, image, boxes = _frame(seed, look="cs2")
    assert readback_problems(image, boxes, state, extras) == []


@pytest.mark.parametrize("element, field", [("money", "player_money"), ("health", "player_health"),
                                            ("weapon_primary", "weapon_primary"), ("portrait_own_0", "alive_teammates")])
def test_a_label_whose_element_is_not_drawn_fails_the_readback(element, field):
    """Paint over one element (as if the renderer forgot to draw it): the read-back names that field."""
    for seed in range(50):
        state, extras, image, boxes = _frame(seed)
        if element in boxes and getattr(state, field) is not None:
            break
    ImageDraw.Draw(image).rectangle(boxes[element], fill=(60, 60, 60))
    assert any(p.startswith(field) for p in readback_problems(image, boxes, state, extras))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("field, off_by", [("player_money", 100), ("player_armor", 3), ("player_health", 7)])
def test_a_label_with_a_number_other_than_the_drawn_one_fails_the_readback(seed, field, off_by):
    """The readers are lenient (the recognizer alone, the detector, enlarged): a number other than the one drawn is
    still read as not shown, whichever of them reads the box."""
    state, extras, image, boxes = _frame(seed)
    wrong = state.model_copy(update={field: getattr(state, field) + off_by})
    assert any(p.startswith(field) for p in readback_problems(image, boxes, wrong, extras))
