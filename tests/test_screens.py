import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from chimera.schema import WEAPONS, GameState
from chimera.screens.frames import save_frame, write_manifest
from chimera.screens.hud import (CS2_MONEY, FONTS, estimate_hud_scale, png_bytes, render_frame, sample_state,
                                 sample_style)
from chimera.vlm.views import MIN_HUD_CONTRAST
from chimera.screens.video import VideoError, dhash, download_video, extract_frames, hamming, iter_frames, render_clip, truth_at


def _pair(seed):
    rng = random.Random(seed)
    state, extras = sample_state(rng)
    return state, extras, sample_style(rng)


def test_same_seed_gives_identical_bytes():
    for seed in range(3):
        state, extras, style = _pair(seed)
        a, _ = render_frame(state, extras, style)
        b, _ = render_frame(*_pair(seed)[:2], _pair(seed)[2])
        assert png_bytes(a) == png_bytes(b)
    assert png_bytes(render_frame(*_pair(0))[0]) != png_bytes(render_frame(*_pair(1))[0])


@pytest.mark.parametrize("seed", range(300))
def test_sampled_states_are_valid_and_consistent(seed):
    state, extras = sample_state(random.Random(seed))
    GameState.model_validate(state.model_dump())  # schema ranges
    assert state.player_money % 50 == 0 and 0 <= state.player_money <= 16000
    side = state.player_side
    for weapon in (state.weapon_primary, state.weapon_secondary):
        if weapon:
            assert WEAPONS[weapon][1] in (side, "both"), f"{side} cannot buy {weapon}"
    if side == "T":
        assert not extras.has_kit
        assert "Incendiary Grenade" not in state.utility
    else:
        assert not extras.has_bomb and "Molotov" not in state.utility
        assert state.bomb_status in ("not_visible", "planted", "defused", "exploded")
    assert (state.bomb_status == "planted") == (state.round_phase == "post_plant")
    assert (state.site in ("A", "B")) == (state.bomb_status == "planted")  # the site is drawn only in the planted icon
    assert state.map_name is None  # the HUD does not show the map
    assert state.visible_enemies <= state.alive_enemies
    assert len(state.utility) <= 4 and state.utility.count("Flashbang") <= 2
    assert extras.ct_score + extras.t_score == extras.round_num - 1


def _clean_frame(state, extras, style):
    return render_frame(state, extras, style.clean())


def _read_back(field, candidates, state, extras, style, key=None, extras_field=None):
    """OCR-free read: re-render the frame with each candidate value and match the HUD region."""
    image, boxes = _clean_frame(state, extras, style)
    box = boxes[key or field.replace("player_", "")]
    target = np.asarray(image.crop(box), dtype=np.int16)
    best, best_err = None, None
    for value in candidates:
        s2, e2 = (state, replace(extras, **{extras_field: value})) if extras_field else (
            state.model_copy(update={field: value}), extras)
        other = np.asarray(_clean_frame(s2, e2, style)[0].crop(box), dtype=np.int16)
        err = np.abs(other - target).mean()
        if best_err is None or err < best_err:
            best, best_err = value, err
    return best, best_err


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_rendered_numbers_read_back_as_the_truth(seed):
    state, extras, style = _pair(seed)
    style = replace(style, width=1280, height=720, font=FONTS[seed % len(FONTS)])
    rng = random.Random(seed)
    health_candidates = sorted({state.player_health, *rng.sample(range(1, 101), 12)})
    assert _read_back("player_health", health_candidates, state, extras, style) == (state.player_health, 0.0)
    money_candidates = sorted({state.player_money, *[rng.randrange(0, 16001, 50) for _ in range(12)]})
    assert _read_back("player_money", money_candidates, state, extras, style)[0] == state.player_money
    if extras.active_slot != "knife":
        ammo = sorted({extras.ammo_clip, *range(0, 31, 3)})
        assert _read_back("ammo", ammo, state, extras, style, key="ammo", extras_field="ammo_clip")[0] == extras.ammo_clip


def test_changing_a_value_changes_only_its_region():
    state, extras, style = _pair(7)
    style = replace(style.clean(), width=1920, height=1080)
    a, boxes = render_frame(state, extras, style)
    b, _ = render_frame(state.model_copy(update={"player_health": (state.player_health % 99) + 1}), extras, style)
    diff = np.argwhere(np.asarray(a, dtype=np.int16).sum(-1) != np.asarray(b, dtype=np.int16).sum(-1))
    assert len(diff)
    x0, y0, x1, y1 = boxes["health"]
    # the health number and its low-health icon colour: nothing else in the frame moves
    assert diff[:, 1].min() >= x0 - 60 and diff[:, 1].max() <= x1 and diff[:, 0].min() >= y0 - 10


def test_the_cs2_look_redraws_only_the_money_and_vitals():
    """Classic is the default (frames drawn before the look existed are unchanged); the CS2 look changes the pixels of
    the money and vitals and of nothing else; its money is in the team's colour; an unknown look is an error."""
    state, extras, style = _pair(4)
    style = replace(style.clean(), width=1920, height=1080)
    default, boxes = render_frame(state, extras, style)
    classic, _ = render_frame(state, extras, style, look="classic")
    cs2, cs2_boxes = render_frame(state, extras, style, look="cs2")
    assert png_bytes(default) == png_bytes(classic)
    changed = np.nonzero(np.abs(np.asarray(cs2, dtype=np.int16) - np.asarray(classic, dtype=np.int16)).sum(axis=2))
    assert changed[0].size and changed[0].min() >= min(boxes["money"][1], cs2_boxes["armor"][1]) - 30  # the bottom band
    assert changed[1].max() <= max(boxes["health"][2], cs2_boxes["health"][2]) + 5                # left of the centre
    pixels = np.asarray(cs2.crop(cs2_boxes["money"]), dtype=np.int16).reshape(-1, 3)
    assert (np.abs(pixels - np.array(CS2_MONEY[state.player_side])).sum(axis=1) <= 30).sum() > 100
    with pytest.raises(ValueError, match="unknown HUD look 'cs3'"):
        render_frame(state, extras, style, look="cs3")


def test_the_cs2_look_right_aligns_the_money_as_cs2_does():
    """CS2 ends every amount on the same pixel, so a short amount starts further right (the shared screenshots'
    money crops at HUD scale 1, BENCHMARKS.md nineteenth session). Found from the pixels in the team's colour left of
    the shield, not from the boxes the renderer returns."""
    state, extras, style = _pair(4)
    style = replace(style.clean(), width=1920, height=1080, hud_scale=1.0)
    spans = {}
    for amount in (550, 16000):
        frame, _ = render_frame(state.model_copy(update={"player_money": amount}), extras, style, look="cs2")
        band = np.asarray(frame, dtype=np.int16)[1080 - 120:, :400]
        money = np.abs(band - np.array(CS2_MONEY[state.player_side])).sum(axis=2) <= 30
        columns = np.flatnonzero(money.sum(axis=0))
        spans[amount] = (columns.min(), columns.max())
    assert abs(spans[550][1] - spans[16000][1]) <= 2
    assert spans[550][0] > spans[16000][0] + 40


def test_every_output_size_and_low_health_is_red():
    state, extras, style = _pair(3)
    for w, h in [(1920, 1080), (1280, 720), (640, 360), (960, 540)]:
        img, boxes = render_frame(state, extras, replace(style, width=w, height=h))
        assert img.size == (w, h) and boxes["money"][2] <= w
    low = state.model_copy(update={"player_health": 9})
    img, boxes = render_frame(low, extras, replace(style.clean(), width=1920, height=1080))
    pixels = np.asarray(img.crop(boxes["health"])).reshape(-1, 3)
    assert ((pixels[:, 0] > 200) & (pixels[:, 1] < 100)).sum() > 50


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720), (640, 360)])
def test_hud_scale_is_found_from_the_pixels(size):
    """The estimate comes from the image alone; the style that drew it is the truth it is checked against. Low
    health (a red cross) and JPEG plus blur included, in both looks: every sampled frame within 0.005."""
    errors = []
    for seed in range(12):
        state, extras, style = _pair(f"hud-scale:{seed}")
        if seed % 3 == 0:
            state = state.model_copy(update={"player_health": 7})
        style = replace(style, width=size[0], height=size[1], hud_scale=0.85 + 0.3 * seed / 11)
        look = "cs2" if seed % 2 else "classic"
        scale, contrast = estimate_hud_scale(render_frame(state, extras, style, look=look)[0])
        errors.append(abs(scale - style.hud_scale))
    assert max(errors) <= 0.005, errors
    # a scene with no HUD (smooth, as photographs are) finds nothing to match: it scores below any rendered frame
    scene = Image.fromarray(np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8))
    assert estimate_hud_scale(scene.filter(ImageFilter.GaussianBlur(2)))[1] < MIN_HUD_CONTRAST < 76


def test_manifest_ids_are_png_hashes(tmp_path):
    import hashlib

    img = Image.new("RGB", (64, 36), (10, 20, 30))
    row = save_frame(img, tmp_path, "synthetic", "test", truth={"player_health": 5})
    assert hashlib.sha256(Path(row["path"]).read_bytes()).hexdigest() == row["id"]
    df = write_manifest(tmp_path / "m.parquet", [row, row])
    assert len(df) == 1
    with pytest.raises(ValueError, match="unknown sources"):
        write_manifest(tmp_path / "bad.parquet", [{**row, "source": "drawing"}])


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return render_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=6, fps=4, seed=0, size=(320, 180))


def test_extraction_pulls_the_expected_number_of_frames(clip):
    assert len(list(iter_frames(clip, 1.0))) == 6
    assert len(list(iter_frames(clip, 0.5))) == 12
    assert [t for t, _ in iter_frames(clip, 2.0)] == [0.0, 2.0, 4.0]
    # the camera moves every 2 s: the second of each pair is a near-duplicate
    kept, dropped = extract_frames(clip, 1.0, dedupe_threshold=4)
    assert (len(kept), dropped) == (3, 3)
    assert truth_at(clip, 2.0)["round_phase"] == "playing"


def test_dhash_is_stable_under_compression():
    state, extras, style = _pair(4)
    img, _ = render_frame(state, extras, replace(style, width=640, height=360, jpeg_quality=None))
    jpg, _ = render_frame(state, extras, replace(style, width=640, height=360, jpeg_quality=55))
    other, _ = render_frame(*_pair(5))
    assert hamming(dhash(img), dhash(jpg)) <= 4 < hamming(dhash(img), dhash(other.resize((640, 360))))


def test_corrupt_video_and_bad_url_give_clear_errors(tmp_path, clip):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(VideoError, match="corrupt.mp4"):
        list(iter_frames(bad, 1.0))
    with pytest.raises(VideoError, match="no such file"):
        list(iter_frames(tmp_path / "missing.mp4", 1.0))
    with pytest.raises(VideoError, match="127.0.0.1:9/clip.mp4: download failed"):
        download_video("http://127.0.0.1:9/clip.mp4", tmp_path / "dl", timeout_s=3)


def test_yt_dlp_downloads_through_its_real_code_path(tmp_path, clip):
    # file:// is the one URL scheme reachable offline; yt-dlp's generic extractor handles it
    path = download_video(clip.resolve().as_uri(), tmp_path / "dl", allow_file_urls=True)
    assert path.exists() and path.read_bytes() == clip.read_bytes()
    assert len(list(iter_frames(path, 1.0))) == 6
