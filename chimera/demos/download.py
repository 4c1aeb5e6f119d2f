"""Download demos listed in params (URL list), with a timeout and a clear message when offline."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import httpx

from chimera.io import atomic_write_bytes


def download_demos(urls: list[str], folder: Path, timeout_s: float = 30.0) -> list[Path]:
    """Fetch each URL once (kept files are never fetched again); failures are reported and skipped."""
    paths = []
    for url in urls or []:
        target = folder / Path(urlparse(url).path).name
        if not target.exists():
            try:
                with httpx.Client(timeout=timeout_s, follow_redirects=True) as client:
                    response = client.get(url)
                    response.raise_for_status()
                atomic_write_bytes(target, response.content)
            except httpx.HTTPError as exc:
                print(f"warning: could not download {url}: {type(exc).__name__}: {exc} (offline?); skipped")
                continue
        paths.append(target)
    return paths
