"""Stage collect_video: yt-dlp downloads (params URLs) + local videos + a synthetic clip -> frames + manifest.

Failures (unreachable URL, private video, corrupt file) are reported in data/frames/video/report.json and
skipped. Downloads are kept in .cache/video (outside DVC's outputs) so a rerun does not fetch them again; the
videos used are copied into data/raw/video, a DVC output, so `dvc push` shares them with the team.
"""

from _common import log, params

import shutil
from pathlib import Path

from tqdm import tqdm

from chimera.io import VIDEO_CACHE, write_json
from chimera.screens.frames import save_frame, write_manifest
from chimera.screens.subtitles import SubtitleError, rules_from_params, subtitle_frames
from chimera.screens.video import (VideoError, download_with_subtitles, extract_frames, render_clip, subtitle_beside,
                                   truth_at)

p, seed = params("video"), params()["seed"]
logger = log("collect_video")
out = Path("data/frames/video")
videos, errors, subtitles = [], [], {}
Path("data/raw/video").mkdir(parents=True, exist_ok=True)
for url in p["urls"]:
    try:
        cached, subs = download_with_subtitles(url, VIDEO_CACHE, p["max_height"], subtitles=p["subtitles"])
        kept = Path("data/raw/video") / cached.name
        shutil.copyfile(cached, kept)
        videos.append((kept, url))
        if subs is not None:
            subtitles[kept] = Path("data/raw/video") / subs.name
            shutil.copyfile(subs, subtitles[kept])
    except VideoError as exc:
        logger.warning("%s", exc)
        errors.append(str(exc))
videos += [(Path(v), v) for v in p["local_videos"]]
if p["subtitles"]:  # a local video's subtitles lie beside it, named like it
    subtitles.update({path: found for path, _ in videos if path not in subtitles and (found := subtitle_beside(path))})
clip = p["synthetic_clip"]
if clip["seconds"] > 0:
    path = render_clip(Path("data/raw/video/synthetic_clip.mp4"), clip["seconds"], clip["fps"], seed,
                       (clip["width"], clip["height"]), Path(params("screens")["shared_screenshots"]))
    videos.append((path, "synthetic-clip"))

rows, dropped, guided = [], 0, 0
for path, origin in tqdm(videos, desc="videos", unit="video"):
    if path in subtitles:  # frames where the commentary says the action is, each with its transcript
        try:
            picked = subtitle_frames(path, subtitles[path], rules_from_params(p["subtitle_rules"]), p["interval_s"])
            rows += [save_frame(image, out, "video", origin, timestamp=t, truth=truth_at(path, t),
                                meta={"video": str(path), **meta}) for t, image, meta in picked]
            guided += len(picked)
        except (VideoError, SubtitleError) as exc:
            logger.warning("%s", exc)
            errors.append(str(exc))
        if p["subtitle_mode"] == "instead":
            continue
    try:
        frames, n_dropped = extract_frames(path, p["interval_s"], p["dedupe_threshold"], errors)
    except VideoError as exc:
        logger.warning("%s", exc)
        errors.append(str(exc))
        continue
    dropped += n_dropped
    for t, image in frames:
        rows.append(save_frame(image, out, "video", origin, timestamp=t, truth=truth_at(path, t),
                               meta={"video": str(path)}))
df = write_manifest("data/frames/video.parquet", rows)
write_json(out / "report.json", {"videos": len(videos), "frames": len(df), "near_duplicates_dropped": dropped,
                                 "subtitle_guided_frames": guided, "videos_with_subtitles": len(subtitles),
                                 "errors": errors})
logger.info("%d frames from %d videos (%d near-duplicates dropped, %d errors)", len(df), len(videos), dropped, len(errors))
