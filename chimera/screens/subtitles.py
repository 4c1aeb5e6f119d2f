"""Transcript-guided frame selection: a video's subtitles say where the action is ("they plant B", "2v4", "eco").

Subtitles are read with webvtt-py (WebVTT and SRT), each cue is scored by keyword rules from params.yaml, and the
moments worth labeling are the high-scoring cues, a minimum gap apart; frames are taken from a window around each.
Every selected frame keeps the transcript lines around it, which the Claude labeler passes on as commentary that
may be wrong (chimera/prompts.py COMMENTARY_PREAMBLE), never as the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

XVY = re.compile(r"\b([1-5])\s*(?:v|vs\.?|versus|on)\s*([1-5])\b", re.IGNORECASE)
TAG = re.compile(r"<[^>]+>")  # inline VTT tags (<c>, <00:00:01.000>) in automatic captions


class SubtitleError(ValueError):
    """A subtitle file that cannot be read; the message names the file."""


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


@dataclass
class Moment:
    start: float           # the window taken around the cue(s)
    end: float
    score: float
    cues: list[Cue] = field(default_factory=list)


@dataclass
class SubtitleRules:
    """Keyword weights (whole words, case-insensitive; a phrase may hold spaces), a weight for an XvY count, the
    score a cue needs, the window around it and the minimum gap between moments, in seconds."""
    keywords: dict[str, float]
    xvy_weight: float = 3.0
    min_score: float = 3.0
    window_s: float = 3.0
    min_gap_s: float = 8.0
    context_s: float = 10.0   # transcript lines kept with a frame: cues within this many seconds of it


def read_subtitles(path: str | Path) -> list[Cue]:
    """Cues of a .vtt or .srt file, in time order, with inline tags removed and rolling-caption repeats merged."""
    import webvtt

    path = Path(path)
    try:
        captions = webvtt.from_srt(str(path)) if path.suffix.lower() == ".srt" else webvtt.read(str(path))
    except (OSError, webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError, UnicodeDecodeError) as exc:
        raise SubtitleError(f"{path}: not a readable subtitle file ({type(exc).__name__}: {exc})") from None
    cues, last = [], None
    for c in captions:
        text = " ".join(TAG.sub("", c.text).split())
        if not text or text == last:  # automatic captions repeat the previous line as they roll
            continue
        # start_in_seconds truncates to whole seconds: milliseconds keep the fraction
        cues.append(Cue(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, text))
        last = text
    return sorted(cues, key=lambda c: c.start)


def score_cue(text: str, rules: SubtitleRules) -> float:
    lowered = text.lower()
    score = sum(weight for word, weight in rules.keywords.items()
                if re.search(rf"\b{re.escape(word.lower())}\b", lowered))
    return score + (rules.xvy_weight if XVY.search(text) else 0.0)


def select_moments(cues: list[Cue], rules: SubtitleRules) -> list[Moment]:
    """High-scoring cues, best first, none closer than min_gap_s to one already chosen; returned in time order."""
    scored = sorted(((score_cue(c.text, rules), c) for c in cues), key=lambda sc: (-sc[0], sc[1].start))
    chosen: list[Moment] = []
    for score, cue in scored:
        if score < rules.min_score:
            break
        if any(abs(cue.start - m.cues[0].start) < rules.min_gap_s for m in chosen):
            continue
        chosen.append(Moment(max(0.0, cue.start - rules.window_s), cue.end + rules.window_s, score, [cue]))
    return sorted(chosen, key=lambda m: m.start)


def context_lines(cues: list[Cue], t: float, context_s: float) -> list[str]:
    """The transcript around time t: cues that overlap [t - context_s, t + context_s]."""
    return [c.text for c in cues if c.end >= t - context_s and c.start <= t + context_s]


def moment_times(moments: list[Moment], interval_s: float) -> list[tuple[float, Moment]]:
    """Frame times inside each moment's window, one per interval_s."""
    out = []
    for m in moments:
        t = m.start
        while t <= m.end + 1e-9:
            out.append((round(t, 3), m))
            t += interval_s
    return out


def rules_from_params(p: dict) -> SubtitleRules:
    return SubtitleRules(keywords=dict(p["keywords"]), xvy_weight=p["xvy_weight"], min_score=p["min_score"],
                         window_s=p["window_s"], min_gap_s=p["min_gap_s"], context_s=p["context_s"])


def subtitle_frames(video: Path, subtitle: Path, rules: SubtitleRules, interval_s: float):
    """(time, image, meta) for frames around the high-scoring moments; meta holds the transcript lines around the
    frame, the moment's score and its cue."""
    from chimera.screens.video import frames_at

    cues = read_subtitles(subtitle)
    timed = moment_times(select_moments(cues, rules), interval_s)
    moment_of = {}
    for t, m in timed:
        moment_of.setdefault(t, m)
    out = []
    wanted = sorted(moment_of)
    got = frames_at(video, wanted)
    for (t, image), asked in zip(got, wanted):  # frames_at answers each asked time in order, until the video ends
        m = moment_of[asked]
        out.append((t, image, {"selected_by": "subtitles", "subtitle_score": m.score, "cue": m.cues[0].text,
                               "transcript": context_lines(cues, t, rules.context_s), "subtitles": str(subtitle)}))
    return out
