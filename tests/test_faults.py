"""Fault injection: real loopback servers answering with storms and malformed bodies, a SIGKILL mid-run,
hostile files through the commands and stages that read them. Each test asserts the clear message, that the
batch went on, and that nothing finished was lost or paid twice (docs/errors.md). Counts are printed
(`pytest -s tests/test_faults.py`) for BENCHMARKS.md's reliability section."""

import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import pytest
from PIL import Image

from chimera.labeling.claude import ClaudeConfig, ClaudeLabeler
from conftest import ROOT
from fake_servers import FakeAPI

STORM = ["429", "ok", "503", "ok", "html", "ok", "no_content", "500", "ok", "no_tool", "ok", "ok"]


def images(n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        buf = io.BytesIO()
        Image.new("RGB", (64, 36), (i * 20 % 256, 100, 200 - i * 10 % 200)).save(buf, "PNG")
        out.append((f"img{i:02d}", buf.getvalue()))
    return out


@pytest.fixture
def anthropic_env(monkeypatch):
    def point_at(api):
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    return point_at


def test_labeler_survives_a_storm_of_errors_and_malformed_bodies(tmp_path, anthropic_env):
    items = images(12)
    with FakeAPI(lambda n: STORM[(n - 1) % len(STORM)]) as api:
        anthropic_env(api)
        labeler = ClaudeLabeler(ClaudeConfig(max_concurrency=4, max_retries=3, timeout_s=10), tmp_path / "cache")
        first = labeler.label_many(items)
        assert len(first.records) + len(first.failures) == 12  # every item accounted for, no crash
        assert all(f["error"] for f in first.failures)
        api.fault = lambda n: "ok"  # the server recovers: the rerun retries the failures, pays for nothing twice
        second = labeler.label_many(items)
        requests = api.requests
    assert len(second.records) == 12 and second.cached == len(first.records)
    assert api.paid_twice == 0
    print(f"\nlabeler storm: {requests} requests, {len(first.records)} labels kept on the first pass, "
          f"{len(first.failures)} items failed with a message, all 12 after a rerun, paid twice {api.paid_twice}")


KILLED_LABELER = """
import sys
from pathlib import Path
from chimera.labeling.claude import ClaudeConfig, ClaudeLabeler
folder, cache = Path(sys.argv[1]), Path(sys.argv[2])
items = [(p.stem, p.read_bytes()) for p in sorted(folder.glob("*.png"))]
ClaudeLabeler(ClaudeConfig(max_concurrency=2, max_retries=0, timeout_s=10), cache).label_many(items)
"""


def finished_entries(cache) -> list:
    """Cache entries a rerun can use. A SIGKILL during a write leaves the writer's hidden temp file
    (`.<hash>.XXXX.tmp.json`) beside them, never a half-written entry; pathlib's glob matches dotfiles, so they
    are told apart by name."""
    return [p for p in cache.glob("*.json") if not p.name.startswith(".")]


def test_a_sigkill_mid_run_loses_nothing_and_pays_at_most_the_requests_in_flight(tmp_path, anthropic_env):
    folder, cache = tmp_path / "frames", tmp_path / "cache"
    folder.mkdir()
    items = images(12)
    for image_id, data in items:
        (folder / f"{image_id}.png").write_bytes(data)
    with FakeAPI(delay_s=0.3) as api:
        anthropic_env(api)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-c", KILLED_LABELER, str(folder), str(cache)], env=env)
        deadline = time.time() + 60
        while time.time() < deadline and len(finished_entries(cache)) < 4:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        kept = len(finished_entries(cache))
        for entry in finished_entries(cache):
            json.loads(entry.read_text())  # every finished entry is whole
        assert kept >= 4, "the labeler never got going"
        rerun = ClaudeLabeler(ClaudeConfig(max_concurrency=2, max_retries=0, timeout_s=10), cache).label_many(items)
    assert len(rerun.records) == 12 and rerun.cached >= kept
    assert api.paid_twice <= 2  # at most one request in flight per concurrent worker
    print(f"\nSIGKILL: {kept} labels kept at the kill, 12 after the rerun, {api.requests} requests, "
          f"paid twice {api.paid_twice} (<= 2 workers in flight)")


def test_openai_compatible_backend_against_a_storming_server(tmp_path):
    from chimera.vlm.backends import OpenAICompatBackend

    paths = []
    for image_id, data in images(8):
        (tmp_path / f"{image_id}.png").write_bytes(data)
        paths.append((image_id, str(tmp_path / f"{image_id}.png")))
    storm = ["429", "500", "ok", "html", "503", "ok", "ok", "no_content"]
    with FakeAPI(lambda n: storm[(n - 1) % len(storm)]) as api:
        backend = OpenAICompatBackend(api.url + "/v1", "Qwen/Qwen3-VL-8B-Instruct", concurrency=2, backoff_s=0.01,
                                      max_retries=3)
        out = backend.analyze(paths)
        requests = api.requests
    failed = [p for p in out if p.error]
    assert len(out) == 8 and all(p.parse.ok for p in out if not p.error)
    assert all(p.error.startswith("server error") for p in failed)  # malformed 200s: that frame only
    print(f"\nOpenAI-compatible storm: {requests} requests, {8 - len(failed)} answers, {len(failed)} failed with a message")


# --------------------------------------------------------------------------------------------------
# Hostile files
# --------------------------------------------------------------------------------------------------

def _png_header(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


def hostile_folder(folder):
    """One good frame and every bad kind the issue lists."""
    folder.mkdir()
    good = io.BytesIO()
    Image.new("RGB", (160, 90), (10, 120, 30)).save(good, "PNG")
    (folder / "good.png").write_bytes(good.getvalue())
    (folder / "zero.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes(good.getvalue()[:60])
    (folder / "text.png").write_text("not an image at all")
    (folder / "bomb.png").write_bytes(_png_header(10_000, 8_000))
    (folder / "dir.png").mkdir()
    return ["zero.png", "truncated.png", "text.png", "bomb.png"]


def test_chimera_infer_on_a_hostile_folder_names_each_bad_file_and_goes_on(tmp_path):
    from typer.testing import CliRunner

    from chimera.cli import app
    from chimera.vlm.models import build_tiny_model

    bad = hostile_folder(tmp_path / "frames")
    tiny = build_tiny_model(tmp_path / "tiny")
    result = CliRunner().invoke(app, ["infer", "--input", str(tmp_path / "frames"), "--output", str(tmp_path / "out"),
                                      "--model", str(tiny), "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    assert "dir.png: not a file, skipped" in result.output
    records = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.json")]
    failed = {e.split(": unreadable image")[0].rsplit("/", 1)[-1] for r in records for e in r["errors"]
              if "unreadable image" in e}
    assert failed == set(bad) and sum(not r["failed"] for r in records) == 1
    print(f"\nhostile folder: 1 predicted, {len(failed)} failed with their file named, 1 directory skipped")


def test_training_data_and_contact_sheets_skip_unreadable_frames(tmp_path, caplog):
    from chimera.schema import example_analysis
    from chimera.screens.frames import contact_sheet
    from chimera.training.sft import screen_dataset

    hostile_folder(tmp_path / "frames")
    paths = sorted(str(p) for p in (tmp_path / "frames").iterdir())
    label = example_analysis().model_dump(mode="json")
    dataset = screen_dataset([(p, label) for p in paths])
    assert len(dataset) == 1 and "bomb.png: unreadable image" in caplog.text
    sheet = contact_sheet(paths, tmp_path / "sheet.png", 3, labels=[p.rsplit("/", 1)[-1] for p in paths])
    assert sheet.exists()


def test_a_demo_archive_with_a_missing_key_or_unequal_arrays_is_one_clear_error(tmp_path, shared):
    from chimera.demos.canonical import DemoError
    from chimera.demos.cs2df import load_cs2df

    source = sorted((shared / "data" / "cs2-parsed-matches").glob("*.zip"))[0]
    with zipfile.ZipFile(source) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    match = json.loads(files["match.json"])
    match.pop("mapName")
    rounds = json.loads(files["rounds.json"])
    del rounds[0]["winner" if "winner" in rounds[0] else next(iter(rounds[0]))]
    for name, changed in (("missing_key", {"rounds.json": json.dumps(rounds).encode()}),
                          ("blank_map", {"match.json": json.dumps(match).encode()})):
        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for member, data in {**files, **changed}.items():
                zf.writestr(member, data)
        if name == "blank_map":
            assert load_cs2df(path).map_name == "unknown"  # never a blank name
        else:
            with pytest.raises(DemoError, match=f"{name}.zip: malformed cs2-demo-format data"):
                load_cs2df(path)


def test_demo_sources_fail_alone_and_zero_round_demos_are_skipped_with_a_line(tmp_path, shared, caplog):
    """What parse_demos runs: a broken zip, a zero-round demo (the shipped short .dem clips) and a real match."""
    from chimera.demos.sources import load_sources

    match = sorted((shared / "data" / "cs2-parsed-matches").glob("*.zip"))[0]
    short_demo = shared / "data" / "cs2-demos" / "demofile-net_14065.dem"  # parses, but has no complete round
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    loaded = load_sources([match, short_demo, broken])
    assert [m.match_id for m in loaded.matches] == [match.stem]
    assert loaded.skipped == [{"file": str(short_demo), "reason": "no complete rounds"}]
    assert loaded.failed[0]["file"] == str(broken) and "broken.zip" in loaded.failed[0]["error"]
    assert "demofile-net_14065.dem: no complete rounds" in caplog.text


def test_a_video_that_breaks_midway_keeps_the_frames_before_the_break(tmp_path):
    from chimera.screens.video import VideoError, extract_frames, render_clip

    clip = render_clip(tmp_path / "clip.mp4", seconds=6, fps=4, seed=0, size=(320, 180))
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 3000] = b"\xff" * 3000  # garbage in the middle of the stream: the decoder fails there
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    errors: list[str] = []
    kept, _ = extract_frames(broken, 0.25, dedupe_threshold=-1, errors=errors)
    assert kept and len(errors) == 1 and "broken.mp4: decoding failed" in errors[0] and "kept the" in errors[0]
    (tmp_path / "garbage.mp4").write_bytes(b"\x00" * 5000)
    with pytest.raises(VideoError, match="garbage.mp4"):  # nothing decodable at all: one clear error
        extract_frames(tmp_path / "garbage.mp4", 1.0, 4)
