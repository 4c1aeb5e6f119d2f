"""`chimera serve` on a real uvicorn (loopback port), CS2 Game State Integration ingest and pairing into labels,
and `chimera watch` on a temp folder. GSI payloads follow Valve's documented format:
https://developer.valvesoftware.com/wiki/Counter-Strike:_Global_Offensive_Game_State_Integration
(sections provider, map, round, player with state and weapons; auth.token from the cfg)."""

from __future__ import annotations

import io
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from chimera.cli import app
from chimera.gsi import GsiStore, game_state_from_gsi, gsi_config, nearest_state, read_gsi_log
from chimera.screens.hud import Style, png_bytes, render_frame, sample_state
from chimera.serve import ServeConfig, ServerThread, create_app
from chimera.vlm.backends import LocalBackend
from chimera.vlm.models import ModelConfig, build_tiny_model, load_model

TOKEN = "s3cret-token"


def gsi_payload(t: float, health=100, armor=100, money=3250, team="CT", bomb=None, phase="live") -> dict:
    """A player's GSI POST as CS2 sends it (fields per the documentation cited above)."""
    payload = {
        "provider": {"name": "Counter-Strike 2", "appid": 730, "version": 14059, "steamid": "76561198000000001",
                     "timestamp": int(t)},
        "map": {"mode": "competitive", "name": "de_mirage", "phase": "live", "round": 7,
                "team_ct": {"score": 4, "consecutive_round_losses": 0, "timeouts_remaining": 1},
                "team_t": {"score": 2, "consecutive_round_losses": 2, "timeouts_remaining": 1}},
        "round": {"phase": phase},
        "player": {"steamid": "76561198000000001", "name": "player", "observer_slot": 1, "team": team,
                   "activity": "playing",
                   "state": {"health": health, "armor": armor, "helmet": True, "flashed": 0, "smoked": 0,
                             "burning": 0, "money": money, "round_kills": 0, "round_killhs": 0, "equip_value": 5100},
                   "weapons": {
                       "weapon_0": {"name": "weapon_knife", "paintkit": "default", "type": "Knife", "state": "holstered"},
                       "weapon_1": {"name": "weapon_usp_silencer", "paintkit": "default", "type": "Pistol",
                                    "ammo_clip": 12, "ammo_clip_max": 12, "ammo_reserve": 24, "state": "holstered"},
                       "weapon_2": {"name": "weapon_m4a1_silencer", "paintkit": "default", "type": "Rifle",
                                    "ammo_clip": 20, "ammo_clip_max": 20, "ammo_reserve": 80, "state": "active"},
                       "weapon_3": {"name": "weapon_flashbang", "paintkit": "default", "type": "Grenade",
                                    "ammo_reserve": 2, "state": "holstered"},
                       "weapon_4": {"name": "weapon_smokegrenade", "paintkit": "default", "type": "Grenade",
                                    "ammo_reserve": 1, "state": "holstered"}},
                   "match_stats": {"kills": 5, "assists": 1, "deaths": 3, "mvps": 1, "score": 14}},
        "auth": {"token": TOKEN},
    }
    if bomb:
        payload["round"]["bomb"] = bomb
    return payload


def frame_png(seed: int, size=(320, 180)) -> bytes:
    state, extras = sample_state(random.Random(seed))
    image, _ = render_frame(state, extras, Style(width=size[0], height=size[1], seed=seed))
    return png_bytes(image)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    tiny = build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")
    model, processor = load_model(ModelConfig(name=str(tiny)))
    return LocalBackend(model, processor, "tiny", batch_size=4, max_new_tokens=8, constrained=False)


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    log = tmp_path_factory.mktemp("gsi") / "gsi.jsonl"
    config = ServeConfig(batch_size=4, max_wait_ms=50, queue_size=64, max_upload_bytes=2 * 2**20,
                         max_pixels=4_000_000, gsi_token=TOKEN, gsi_log=str(log))
    app_ = create_app(backend, config)
    with ServerThread(app_) as running:
        running.app, running.log = app_, log
        yield running


def post_image(url, data: bytes, name="shot.png", ctype="image/png"):
    return httpx.post(f"{url}/v1/analyze", files={"image": (name, data, ctype)}, timeout=120)


def test_health_openapi_and_one_answer(server):
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    assert "/v1/analyze" in httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200
    data = frame_png(1)
    r = post_image(server.url, data)
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"id", "analysis", "schema_valid", "raw_text", "seconds"}
    assert len(body["id"]) == 64
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(jpeg, "JPEG")
    assert post_image(server.url, jpeg.getvalue(), "shot.jpg", "image/jpeg").status_code == 200


def test_concurrent_requests_are_batched_and_none_lost_or_duplicated(server):
    images = [frame_png(10 + i) for i in range(8)]
    before = list(server.app.state.chimera["batches"])
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda d: post_image(server.url, d), images))
    assert [a.status_code for a in answers] == [200] * 8
    from chimera.io import sha256_bytes

    assert [a.json()["id"] for a in answers] == [sha256_bytes(d) for d in images]  # each caller its own answer
    batches = server.app.state.chimera["batches"][len(before):]
    assert sum(batches) == 8 and max(batches) > 1  # concurrent requests shared a generate call


def decompression_bomb() -> bytes:
    """A tiny PNG whose header claims 20,000 x 20,000 pixels."""
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name,data,ctype,status", [
    ("truncated.png", None, "image/png", 422),
    ("empty.png", b"", "image/png", 422),
    ("notes.txt", b"just some text, not an image", "text/plain", 415),
    ("huge.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 2**20), "image/png", 413),
    ("bomb.png", "bomb", "image/png", 422),
])
def test_malformed_uploads_get_clear_4xx_and_the_server_keeps_serving(server, name, data, ctype, status):
    if data is None:
        data = frame_png(2)[:300]
    elif data == "bomb":
        data = decompression_bomb()
    r = post_image(server.url, data, name, ctype)
    assert r.status_code == status, r.text
    assert "Traceback" not in r.text and r.json()["detail"]
    assert post_image(server.url, frame_png(3)).status_code == 200


def test_a_full_queue_answers_503_at_once(backend):
    class Slow:  # fault injection around the real backend: each batch takes at least 0.5 s
        name = "slow-tiny"

        def analyze(self, items):
            time.sleep(0.5)
            return backend.analyze(items)

    app_ = create_app(Slow(), ServeConfig(batch_size=1, max_wait_ms=0, queue_size=1))
    with ServerThread(app_) as running:
        with ThreadPoolExecutor(6) as pool:
            codes = [r.status_code for r in pool.map(lambda i: post_image(running.url, frame_png(30 + i)), range(6))]
    assert 503 in codes and 200 in codes and set(codes) <= {200, 503}


def test_gsi_ingest_checks_the_token_keeps_the_latest_and_logs(server):
    t = time.time()
    bad = {**gsi_payload(t), "auth": {"token": "wrong"}}
    assert httpx.post(f"{server.url}/gsi", json=bad).status_code == 401
    assert httpx.post(f"{server.url}/gsi", content=b"{not json").status_code == 422
    assert httpx.post(f"{server.url}/gsi", json=gsi_payload(t, health=100)).status_code == 200
    assert httpx.post(f"{server.url}/gsi", json=gsi_payload(t + 1, health=42, bomb="planted")).status_code == 200
    latest = httpx.get(f"{server.url}/gsi/latest").json()["76561198000000001"]
    assert latest["game_state"]["player_health"] == 42 and latest["game_state"]["bomb_status"] == "planted"
    logged = server.log.read_text().splitlines()
    assert len(logged) == 2 and TOKEN not in server.log.read_text()  # accepted ones only, token never logged


def test_game_state_from_a_gsi_payload():
    state, known = game_state_from_gsi(gsi_payload(0, health=67, armor=0, money=800, team="T", phase="freezetime"))
    assert (state.player_side, state.player_health, state.player_armor, state.player_money) == ("T", 67, 0, 800)
    # GSI knows the map, the HUD does not show it: a label says only what its screenshot shows
    assert state.map_name is None and "map_name" not in known
    assert (state.weapon_primary, state.weapon_secondary) == ("M4A1-S", "USP-S")
    assert state.utility == ["Flashbang", "Flashbang", "Smoke Grenade"]
    assert state.round_phase == "buy"
    # what a player's GSI does not know stays unknown, not zero
    assert state.alive_teammates is None and state.alive_enemies is None and state.visible_enemies is None
    assert "alive_enemies" not in known and "player_health" in known
    planted, _ = game_state_from_gsi(gsi_payload(0, bomb="planted"))
    assert (planted.bomb_status, planted.round_phase) == ("planted", "post_plant")


def test_gsi_config_and_label_pairing(tmp_path):
    run = CliRunner().invoke
    cfg = tmp_path / "gamestate_integration_chimera.cfg"
    out = run(app, ["gsi-config", "--out", str(cfg), "--token", TOKEN, "--uri", "http://127.0.0.1:8787/gsi"])
    assert out.exit_code == 0 and f'"token" "{TOKEN}"' in cfg.read_text() and '"player_state" "1"' in cfg.read_text()
    assert "http://127.0.0.1:8787/gsi" in gsi_config("http://127.0.0.1:8787/gsi", TOKEN)
    assert not GsiStore(None).accept(gsi_payload(0))  # a server without a token takes no GSI at all
    # a GSI log as serve writes it, and three screenshots taken at known times
    store = GsiStore(TOKEN, tmp_path / "gsi.jsonl")
    t0 = 1_790_000_000.0
    for dt, health in ((0, 100), (5, 80), (10, 35)):
        assert store.accept(gsi_payload(t0 + dt, health=health))
    frames = tmp_path / "shots"
    frames.mkdir()
    for k, (dt, seed) in enumerate(((5.3, 1), (10.0, 2), (30.0, 3))):
        path = frames / f"shot{k}.png"
        path.write_bytes(frame_png(seed))
        os.utime(path, (t0 + dt, t0 + dt))
    log = read_gsi_log(tmp_path / "gsi.jsonl")
    assert nearest_state(log, t0 + 5.3, 1.0)[1]["player"]["state"]["health"] == 80
    assert nearest_state(log, t0 + 30, 1.0) is None
    result = run(app, ["gsi-label", str(frames), str(tmp_path / "gsi.jsonl"), "--out", str(tmp_path / "labels"),
                       "--tolerance-s", "1.0"])
    assert result.exit_code == 0, result.output
    records = {json.loads(p.read_text())["path"]: json.loads(p.read_text())
               for p in (tmp_path / "labels").glob("*.json") if p.name != "unpaired.json"}
    by_name = {os.path.basename(k): v for k, v in records.items()}
    assert set(by_name) == {"shot0.png", "shot1.png"}
    assert by_name["shot0.png"]["analysis"]["game_state"]["player_health"] == 80  # from the payload at +5 s
    assert by_name["shot1.png"]["analysis"]["game_state"]["player_health"] == 35
    assert by_name["shot0.png"]["labeler"] == "gsi" and by_name["shot0.png"]["analysis"]["game_state"]["alive_enemies"] is None
    unpaired = json.loads((tmp_path / "labels" / "unpaired.json").read_text())
    assert [os.path.basename(u["path"]) for u in unpaired] == ["shot2.png"]
    # the label stage's lookup: paired frames come back (without their local path), the unpaired one does not
    from chimera.gsi import gsi_labels_for
    from chimera.io import sha256_bytes

    ids = [sha256_bytes((frames / f"shot{k}.png").read_bytes()) for k in range(3)]
    found = gsi_labels_for(ids, tmp_path / "labels")
    assert set(found) == set(ids[:2]) and all("path" not in r and r["labeler"] == "gsi" for r in found.values())
    assert gsi_labels_for(ids, tmp_path / "nowhere") == {}


def test_watch_answers_each_new_image_once_and_waits_for_half_written_files(backend, tmp_path):
    from rich.console import Console

    from chimera.watch import watch_folder

    folder, log = tmp_path / "screens", tmp_path / "answers.jsonl"
    folder.mkdir()
    a, b = frame_png(40), frame_png(41)

    def writer():
        time.sleep(0.5)
        (folder / "a.png").write_bytes(a)
        (folder / "copy-of-a.png").write_bytes(a)  # the same image again: not answered twice
        with open(folder / "b.png", "wb") as fh:  # half-written: the rest arrives after a pause
            fh.write(b[:200])
            fh.flush()
            time.sleep(0.6)
            fh.write(b[200:])
        (folder / "gone.png").write_bytes(frame_png(42)[:100])
        (folder / "gone.png").unlink()  # deleted before it was complete
        (folder / "notes.txt").write_text("not an image")

    thread = threading.Thread(target=writer)
    thread.start()
    console = Console(file=io.StringIO(), width=120)
    answered = watch_folder(folder, backend, log, settle_s=0.3, max_events=3, timeout_s=20, console=console)
    thread.join()
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert answered == 2 and sorted(os.path.basename(e["file"]) for e in entries) == ["a.png", "b.png"]
    from chimera.io import sha256_bytes

    assert {e["sha256"] for e in entries} == {sha256_bytes(a), sha256_bytes(b)}  # b was read whole
    shown = console.file.getvalue()
    assert "a.png" in shown and "gone.png" in shown  # the deleted file is reported, not answered
