"""`chimera watch DIR`: each new screenshot in a folder answered once, shown as a compact panel, logged to JSONL.

watchdog reports created and moved-in files; a file is taken only once its size has held for `settle_s` and it
decodes (a screenshot still being written is waited for, not answered half-read); each image is answered once by
content hash (a copy or a re-save is not paid twice, also across restarts: the log is the memory); a file deleted
before it was read is skipped with a line. Bursts queue up and are answered in arrival order.
"""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def wait_until_complete(path: Path, settle_s: float, timeout_s: float = 30.0) -> bytes | None:
    """The file's bytes once its size has held for settle_s and it decodes; None if it vanished or never settled."""
    from chimera.io import open_image

    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        if size != last:
            last, since = size, time.monotonic()
        elif size > 0 and time.monotonic() - since >= settle_s:
            try:
                data = path.read_bytes()
                open_image(data)  # the pipeline's decode check (pixel limit included)
                return data
            except FileNotFoundError:
                return None
            except ValueError:  # still incomplete despite a steady size (a slow writer): keep waiting
                since = time.monotonic()
        time.sleep(min(0.05, settle_s / 4))
    return None


def seen_hashes(log_path: Path) -> set[str]:
    if not log_path.exists():
        return set()
    out = set()
    for line in log_path.read_text().splitlines():
        try:
            out.add(json.loads(line)["sha256"])
        except (ValueError, KeyError):
            continue
    return out


def latest_gsi(gsi_url: str | None) -> dict | None:
    if not gsi_url:
        return None
    import httpx

    try:
        return httpx.get(gsi_url.rstrip("/") + "/gsi/latest", timeout=2.0).json()
    except (httpx.HTTPError, ValueError):
        return None


def panel(name: str, record: dict, gsi: dict | None):
    """A compact rich panel: the HUD reading, the situation, the advice, and GSI's values beside when known."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    analysis = record.get("analysis")
    if not analysis:
        return Panel(Text(f"no valid answer: {'; '.join(record.get('errors') or [])[:300]}"), title=Text(name))
    gs = analysis["game_state"]
    grid = Table.grid(padding=(0, 2))
    truth = next(iter((gsi or {}).values()), {}).get("game_state", {}) if gsi else {}
    for field in ("player_side", "player_health", "player_armor", "player_money", "weapon_primary", "alive_teammates",
                  "alive_enemies", "bomb_status"):
        shown = Text(str(gs.get(field)))
        if truth.get(field) is not None:
            shown.append(f"  (GSI {truth[field]})", style="green" if truth[field] == gs.get(field) else "red")
        grid.add_row(Text(field, style="dim"), shown)
    grid.add_row(Text("situation", style="dim"), Text(analysis["analysis"]["situation_summary"]))
    grid.add_row(Text("advice", style="bold"), Text(analysis["advice"]["primary_action"]))
    return Panel(grid, title=Text(name), subtitle=Text(f"{record.get('latency_s', 0):.1f} s"))


def watch_folder(folder: Path, backend, log_path: Path, gsi_url: str | None = None, settle_s: float = 0.3,
                 max_events: int | None = None, timeout_s: float | None = None, console=None) -> int:
    """Run until interrupted (or max_events answers / timeout_s): returns the number of answers."""
    from rich.console import Console
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    from chimera.io import sha256_bytes

    console = console or Console()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    seen = seen_hashes(log_path)
    pending: queue.Queue[Path] = queue.Queue()

    class OnNew(FileSystemEventHandler):
        def on_created(self, event):
            if not event.is_directory:
                pending.put(Path(event.src_path))

        def on_moved(self, event):  # a writer that renames a temp file into place
            if not event.is_directory:
                pending.put(Path(event.dest_path))

    observer = Observer()
    observer.schedule(OnNew(), str(folder), recursive=False)
    observer.start()
    console.print(f"watching {folder} (Ctrl-C to stop); answers -> {log_path}")
    answered, start = 0, time.monotonic()
    try:
        while max_events is None or answered < max_events:
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                break
            try:
                path = pending.get(timeout=0.2)
            except queue.Empty:
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
                continue
            data = wait_until_complete(path, settle_s)
            if data is None:
                console.print(f"{path.name}: gone or never complete; skipped")
                continue
            sha = sha256_bytes(data)
            if sha in seen:
                continue
            seen.add(sha)
            prediction = backend.analyze([(sha, data)])[0]
            record = prediction.record(getattr(backend, "name", "model"))
            gsi = latest_gsi(gsi_url)
            entry = {"file": str(path), "sha256": sha, "time": time.time(), "answer": record, "gsi": gsi}
            with open(log_path, "a") as fh:
                fh.write(json.dumps(entry) + "\n")
            console.print(panel(path.name, record, gsi))
            answered += 1
    except KeyboardInterrupt:
        pass
    finally:
        observer.stop()
        observer.join(timeout=5)
    return answered
