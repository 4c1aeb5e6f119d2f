"""Gameplay video: yt-dlp download (<= 1080p), PyAV frame extraction at an interval, near-duplicate drop,
and a synthetic gameplay clip (evolving HUD state encoded to MP4) so the extraction path always runs offline.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from PIL import Image

from chimera.screens.hud import Extras, GameState, Style, render_frame, sample_state


class VideoError(RuntimeError):
    """A video that cannot be fetched or decoded; the message names the URL or file."""


def download_options(folder: Path, max_height: int = 1080, timeout_s: float = 20.0, allow_file_urls: bool = False,
                     subtitles: bool = False, subtitle_langs: tuple[str, ...] = ("en", "en-.*")) -> dict:
    """yt-dlp options: <= max_height, bounded retries; with `subtitles`, the manual subtitles in those languages,
    else the automatic captions (yt-dlp prefers manual ones when both are asked for), as WebVTT where offered."""
    options = {
        "format": f"bv*[height<={max_height}][ext=mp4]/b[height<={max_height}]/bv*[height<={max_height}]/b",
        "outtmpl": str(folder / "%(id)s.%(ext)s"), "noplaylist": True, "quiet": True, "no_warnings": True,
        "socket_timeout": timeout_s, "retries": 1, "fragment_retries": 1, "noprogress": True,
        "enable_file_urls": allow_file_urls,
    }
    if subtitles:
        options.update(writesubtitles=True, writeautomaticsub=True, subtitleslangs=list(subtitle_langs),
                       subtitlesformat="vtt/srt/best")
    return options


def download_video(url: str, folder: Path, max_height: int = 1080, timeout_s: float = 20.0,
                   allow_file_urls: bool = False) -> Path:
    """Fetch one video with yt-dlp. Unreachable, private or removed videos raise VideoError (never hang)."""
    return download_with_subtitles(url, folder, max_height, timeout_s, allow_file_urls, subtitles=False)[0]


def download_with_subtitles(url: str, folder: Path, max_height: int = 1080, timeout_s: float = 20.0,
                            allow_file_urls: bool = False, subtitles: bool = True) -> tuple[Path, Path | None]:
    """(video, subtitle file or None when the video has none in the languages asked)."""
    import yt_dlp

    folder.mkdir(parents=True, exist_ok=True)
    try:
        with yt_dlp.YoutubeDL(download_options(folder, max_height, timeout_s, allow_file_urls, subtitles)) as ydl:
            info = ydl.extract_info(url, download=True)
            path = Path(ydl.prepare_filename(info))
    except yt_dlp.utils.YoutubeDLError as exc:
        raise VideoError(f"{url}: download failed: {str(exc).replace('ERROR: ', '')}") from None
    if not path.exists():
        raise VideoError(f"{url}: yt-dlp reported success but {path} is missing")
    subs = [Path(s["filepath"]) for s in (info.get("requested_subtitles") or {}).values() if s.get("filepath")]
    return path, next((s for s in subs if s.exists()), None)


def subtitle_beside(video: Path) -> Path | None:
    """A local video's subtitles: VIDEO.vtt / VIDEO.srt, or VIDEO.<lang>.vtt as yt-dlp names them."""
    for pattern in (f"{video.stem}.vtt", f"{video.stem}.srt", f"{video.stem}.*.vtt", f"{video.stem}.*.srt"):
        found = sorted(video.parent.glob(pattern))
        if found:
            return found[0]
    return None


def frames_at(path: Path, times: list[float]) -> list[tuple[float, Image.Image]]:
    """For each of the sorted, distinct `times`: the first decoded frame at or after it (one pass over the video).
    Times past the end get nothing, so the answer may be shorter than the question, never misaligned."""
    wanted = sorted(set(times))
    out: list[tuple[float, Image.Image]] = []
    k = 0
    for t, image in iter_frames(path, 0.0):
        while k < len(wanted) and t + 1e-6 >= wanted[k]:
            out.append((t, image))
            k += 1
        if k == len(wanted):
            break
    return out


def dhash(image: Image.Image, size: int = 8) -> int:
    """Difference hash: 64 bits, robust to compression and small shifts (perceptual near-duplicates)."""
    gray = image.convert("L").resize((size + 1, size), Image.BILINEAR)
    px = list(gray.getdata())
    bits = 0
    for row in range(size):
        for col in range(size):
            bits = (bits << 1) | (px[row * (size + 1) + col] > px[row * (size + 1) + col + 1])
    return bits


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def iter_frames(path: Path, interval_s: float) -> Iterator[tuple[float, Image.Image]]:
    """Decode with PyAV, yielding one frame per `interval_s` of video time."""
    import av

    if not path.exists():
        raise VideoError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = container.streams.video[0]
        next_t = 0.0
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                if t + 1e-6 >= next_t:
                    yield round(t, 3), frame.to_image()
                    if interval_s <= 0:  # every frame
                        continue
                    next_t += interval_s
                    while next_t <= t:
                        next_t += interval_s
        except av.error.FFmpegError as exc:
            raise VideoError(f"{path}: decoding failed at {next_t:.1f}s ({exc})") from None


def extract_frames(path: Path, interval_s: float, dedupe_threshold: int,
                   errors: list[str] | None = None) -> tuple[list[tuple[float, Image.Image]], int]:
    """Frames at the interval, dropping any within `dedupe_threshold` bits (dHash) of the last kept one.
    A decode error midway keeps the frames already extracted (the error goes to `errors`); one before any
    frame raises VideoError."""
    kept, dropped, last = [], 0, None
    try:
        for t, image in iter_frames(path, interval_s):
            h = dhash(image)
            if last is not None and hamming(h, last) <= dedupe_threshold:
                dropped += 1
                continue
            kept.append((t, image))
            last = h
    except VideoError as exc:
        if not kept or errors is None:
            raise
        errors.append(f"{exc} (kept the {len(kept)} frames before it)")
    return kept, dropped


def evolve(state: GameState, extras: Extras, rng: random.Random) -> tuple[GameState, Extras]:
    """One second of play: the clock runs, ammo is spent, health drops, a player may die."""
    update = {}
    if state.round_phase == "playing":
        if rng.random() < 0.3 and state.player_health and state.player_health > 10:
            update["player_health"] = max(1, state.player_health - rng.randint(5, 40))
        if rng.random() < 0.15 and state.alive_enemies and state.alive_enemies > 1:
            update["alive_enemies"] = state.alive_enemies - 1
            update["visible_enemies"] = min(state.visible_enemies or 0, state.alive_enemies - 1)
    new_extras = replace(extras, time_left_s=max(0.0, extras.time_left_s - 1),
                         ammo_clip=max(0, extras.ammo_clip - rng.randint(0, 3)))
    return state.model_copy(update=update), new_extras


def render_clip(path: Path, seconds: int, fps: int, seed: int, size: tuple[int, int] = (640, 360),
                screenshots_dir: Path | None = None) -> Path:
    """Encode a synthetic gameplay clip with PyAV; the truth per second goes to `<path>.truth.json`."""
    import av

    rng = random.Random(seed)
    while True:
        state, extras = sample_state(rng)
        if state.round_phase == "playing":
            break
    style = Style(width=size[0], height=size[1], seed=seed)
    truth = []
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for second in range(seconds):
            if second % 2 == 0:  # the camera moves to a new view every two seconds
                style = replace(style, seed=rng.randrange(1 << 30))
            image, _ = render_frame(state, extras, style, screenshots_dir)
            truth.append({"t": second, "game_state": state.model_dump(mode="json")})
            for _ in range(fps):
                for packet in stream.encode(av.VideoFrame.from_image(image)):
                    container.mux(packet)
            state, extras = evolve(state, extras, rng)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    path.with_suffix(path.suffix + ".truth.json").write_text(json.dumps(truth))
    return path


def truth_at(video: Path, t: float) -> dict | None:
    sidecar = video.with_suffix(video.suffix + ".truth.json")
    if not sidecar.exists():
        return None
    rows = json.loads(sidecar.read_text())
    second = int(t)
    return next((r["game_state"] for r in rows if r["t"] == second), None)
