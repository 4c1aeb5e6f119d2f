"""Transcript-guided frame selection: subtitle parsing (WebVTT and SRT), cue scoring, moments and their windows,
frames taken from a local clip inside them, and the transcript carried to the labeler's request."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from chimera.cli import app
from chimera.io import read_parquet
from chimera.screens.subtitles import (SubtitleError, SubtitleRules, context_lines, read_subtitles, score_cue,
                                       select_moments, subtitle_frames)
from chimera.screens.video import render_clip

RULES = SubtitleRules(keywords={"plant": 3, "retake": 3, "eco": 2, "b site": 1, "awp": 1}, xvy_weight=3,
                      min_score=3, window_s=0.5, min_gap_s=2.0, context_s=2.0)
VTT = """WEBVTT

00:00:00.000 --> 00:00:01.000
walking to mid, nothing yet

00:00:01.500 --> 00:00:02.500
they <c>plant</c> on B site

00:00:02.600 --> 00:00:03.000
they plant on B site

00:00:04.000 --> 00:00:04.800
it's a 2v4 retake now

00:00:05.200 --> 00:00:05.800
buying for next round
"""
SRT = """1
00:00:00,000 --> 00:00:01,000
walking to mid, nothing yet

2
00:00:01,500 --> 00:00:02,500
they plant on B site

3
00:00:04,000 --> 00:00:04,800
it's a 2v4 retake now

4
00:00:05,200 --> 00:00:05,800
buying for next round
"""


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("subclip")
    return render_clip(folder / "clip.mp4", seconds=6, fps=4, seed=3, size=(320, 180))


@pytest.mark.parametrize("suffix,text", [(".vtt", VTT), (".srt", SRT)])
def test_both_formats_read_to_the_same_cues(tmp_path, suffix, text):
    path = tmp_path / f"subs{suffix}"
    path.write_text(text)
    cues = read_subtitles(path)
    assert [c.text for c in cues] == ["walking to mid, nothing yet", "they plant on B site", "it's a 2v4 retake now",
                                      "buying for next round"]  # tags gone, the rolling repeat merged
    assert (cues[1].start, cues[1].end) == (1.5, 2.5)


def test_scoring_and_moments_follow_the_rules(tmp_path):
    assert score_cue("they plant on B site", RULES) == 4  # plant + b site
    assert score_cue("it's a 2v4 retake now", RULES) == 6  # retake + XvY
    assert score_cue("the planted bomb", RULES) == 0  # whole words: "planted" is not "plant"
    assert score_cue("walking to mid", RULES) == 0
    cues = read_subtitles_from(VTT, tmp_path)
    moments = select_moments(cues, RULES)
    assert [(m.cues[0].text, m.score) for m in moments] == [("they plant on B site", 4), ("it's a 2v4 retake now", 6)]
    assert (moments[0].start, moments[0].end) == (1.0, 3.0)
    # a minimum gap wider than the distance between them keeps only the better one
    wide = SubtitleRules(**{**RULES.__dict__, "min_gap_s": 5.0})
    assert [m.cues[0].text for m in select_moments(cues, wide)] == ["it's a 2v4 retake now"]
    assert context_lines(cues, 4.2, 0.9) == ["it's a 2v4 retake now"]
    assert context_lines(cues, 4.2, 1.0)[-1] == "buying for next round"  # overlap counts at the edge


def read_subtitles_from(text, folder):
    path = folder / "s.vtt"
    path.write_text(text)
    return read_subtitles(path)


@pytest.mark.parametrize("suffix,text", [(".vtt", VTT), (".srt", SRT)])
def test_frames_fall_inside_the_keyword_windows_and_keep_the_transcript(clip, tmp_path, suffix, text):
    subs = tmp_path / f"clip{suffix}"
    subs.write_text(text)
    picked = subtitle_frames(clip, subs, RULES, interval_s=0.5)
    windows = [(1.0, 3.0), (3.5, 5.3)]
    assert picked and all(any(a - 1e-6 <= t <= b + 0.25 for a, b in windows) for t, _, _ in picked)
    assert {meta["cue"] for _, _, meta in picked} == {"they plant on B site", "it's a 2v4 retake now"}
    assert not any(0.0 <= t < 0.99 for t, _, _ in picked)  # the walking cue chose nothing
    t, _, meta = picked[0]
    assert "they plant on B site" in meta["transcript"] and meta["selected_by"] == "subtitles"


def test_collect_command_on_a_local_clip_writes_transcripts_into_the_manifest(clip, tmp_path, monkeypatch):
    import shutil

    video = tmp_path / "match.mp4"
    shutil.copyfile(clip, video)
    (tmp_path / "match.en.vtt").write_text(VTT)  # named as yt-dlp names downloaded subtitles
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"video": {"subtitle_rules": {**RULES.__dict__}}}))
    out = tmp_path / "frames"
    result = CliRunner().invoke(app, ["collect", str(video), "--subtitles", "--interval", "0.5", "--out", str(out),
                                      "--params", str(params)])
    assert result.exit_code == 0, result.output
    manifest = read_parquet(out / "manifest.parquet")
    metas = [json.loads(m) for m in manifest.meta]
    assert len(manifest) >= 4 and all(m["transcript"] for m in metas)
    assert all(1.0 <= t <= 5.6 for t in manifest.timestamp)
    bad = tmp_path / "bad.vtt"
    bad.write_text("not subtitles at all")
    broken = CliRunner().invoke(app, ["collect", str(video), "--subtitles", "--subtitle-file", str(bad),
                                      "--params", str(params), "--out", str(out)])
    assert broken.exit_code == 1 and "bad.vtt: not a readable subtitle file" in broken.output
    offline = CliRunner().invoke(app, ["collect", "http://127.0.0.1:9/v.mp4", "--subtitles", "--out", str(out)])
    assert offline.exit_code == 1 and "download failed" in offline.output


def test_unreadable_subtitles_name_the_file(tmp_path):
    bad = tmp_path / "x.srt"
    bad.write_text("1\nnot a time line\nhello\n")
    with pytest.raises(SubtitleError, match="x.srt"):
        read_subtitles(bad)
