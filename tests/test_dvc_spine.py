"""DVC as the spine: push to a remote, clone, pull, identical data; an unchanged repro is a no-op."""

import hashlib
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd):
    return subprocess.run(list(args), cwd=cwd, check=True, capture_output=True, text=True).stdout


def dvc(*args, cwd):
    return run(sys.executable, "-m", "dvc", *args, cwd=cwd)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_default_remote_is_a_folder_outside_the_clone():
    """DVC resolves a relative remote url against .dvc/: ../../x is beside the clone, never inside it."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    name = config["core"]["remote"]
    url = config[f"'remote \"{name}\"'"]["url"]
    resolved = (ROOT / ".dvc" / url).resolve()
    assert ROOT.resolve() not in resolved.parents and resolved != ROOT.resolve()


def test_push_clone_pull_round_trip_and_noop_repro(tmp_path):
    repo, remote, clone = tmp_path / "repo", tmp_path / "remote", tmp_path / "clone"
    repo.mkdir()
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@t"], ["git", "config", "user.name", "t"]):
        run(*cmd, cwd=repo)
    dvc("init", "-q", cwd=repo)
    dvc("remote", "add", "-d", "tmp", str(remote), cwd=repo)
    (repo / "make_data.py").write_text(
        "import os, json\nos.makedirs('data', exist_ok=True)\n"
        "[open(f'data/{i}.bin','wb').write(os.urandom(1000)) for i in range(3)]\n"
        "json.dump({'n': 3}, open('metrics.json', 'w'))\n")
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"make": {
        "cmd": f"{sys.executable} make_data.py", "deps": ["make_data.py"], "outs": ["data"],
        "metrics": [{"metrics.json": {"cache": False}}]}}}))
    dvc("repro", "-q", cwd=repo)
    assert "didn't change" in dvc("repro", cwd=repo) or "up to date" in dvc("status", cwd=repo)
    assert "Data and pipelines are up to date" in dvc("status", cwd=repo)
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-qm", "data", cwd=repo)
    dvc("push", "-q", cwd=repo)

    run("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    assert not (clone / "data").exists()
    dvc("pull", "-q", cwd=clone)
    assert digest(clone / "data") == digest(repo / "data")
    assert len(digest(clone / "data")) == 3
