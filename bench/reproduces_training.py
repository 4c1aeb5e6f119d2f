"""Will `dvc repro` on this machine rebuild the committed models, or another draw of them? In about two minutes: the
first steps of perception pretraining (the first torch training of the pipeline), run as the committed stage runs
them, against the per-step losses the committed run logged (`git show HEAD:dvclive/perception/...`).

    python bench/reproduces_training.py --steps 20
    ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 python bench/reproduces_training.py --steps 20   # pinned kernels

Every stage before the first training is byte-identical across the x86 machines tried; trained models follow the
CPU's float kernels (BENCHMARKS.md, 2026-12-06). Exit status 0 when every step's loss equals the committed one bit for
bit, 1 when one differs (then every trained model here is another draw, and the committed figures will not come
back to the last digit). Kernel settings are read when torch and MKL load, so each setting is its own process;
`--cache-frames` keeps the rendered frames in /tmp (880 MB) for the next one: 10 s a run instead of 100."""

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import chimera.training.perception as perception  # noqa: E402

LOSSES = "dvclive/perception/plots/metrics/perception/train/loss.tsv"


class Stop(Exception):
    pass


def committed(path: str, rev: str) -> str:
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True)
    if shown.returncode:
        sys.exit(f"{rev}:{path}: {shown.stderr.strip()}")
    return shown.stdout


def losses(tsv: str) -> list[float]:
    return [float(line.split("\t")[1]) for line in tsv.splitlines()[1:]]


def cached(render):
    def render_pool(cfg, start, n, progress=None):
        path = Path(tempfile.gettempdir()) / f"chimera-perception-pool-{cfg.seed}-{start}-{n}.pkl"
        if path.is_file():
            return pickle.loads(path.read_bytes())
        out = render(cfg, start, n, progress)
        path.write_bytes(pickle.dumps(out))
        return out
    return render_pool


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps to run and compare (default 20)")
    ap.add_argument("--against", default="HEAD", help="the git revision (a commit, or an experiment's ref) whose "
                    "params and logged losses to compare with (default HEAD)")
    ap.add_argument("--cache-frames", action="store_true", help="keep the 2,448 rendered frames in /tmp (880 MB)")
    args = ap.parse_args()
    p = yaml.safe_load(committed("params.yaml", args.against))  # the committed setting, whatever params.yaml says now
    tiny = ROOT / p["model"]["tiny_path"]
    if not (tiny / "config.json").is_file():
        sys.exit(f"{tiny}: no tiny model to start from; run `dvc repro build_tiny_model` first")
    reference = losses(committed(LOSSES, args.against))
    if args.cache_frames:
        perception.render_pool = cached(perception.render_pool)
    os.chdir(ROOT)  # the stage's relative paths (backgrounds, screenshots)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = perception.stage_config(p["perception"], str(tiny), p["seed"], p["synthetic"]["backgrounds"],
                                      p["screens"]["shared_screenshots"], dvclive_dir=f"{tmp}/live",
                                      checkpoint_dir=None, output_dir=f"{tmp}/out")
        done = [0]

        def on_step(n):
            done[0] += n
            if done[0] >= args.steps:
                raise Stop

        try:
            perception.train(cfg, progress=lambda message: None, on_step=on_step)
        except Stop:
            pass
        here = losses((Path(tmp) / "live" / LOSSES.removeprefix("dvclive/perception/")).read_text())
    differ = [i for i, (a, b) in enumerate(zip(here, reference)) if a != b]
    pinned = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA") if k in os.environ}
    print(f"kernels: torch {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads, "
          f"pinned {pinned or 'nothing'}")
    print("step by step (= the committed loss bit for bit, x not):",
          "".join("x" if i in differ else "=" for i in range(len(here))))
    if not differ:
        print(f"all {len(here)} steps equal {args.against}'s run: this machine rebuilds its models")
        return 0
    first = differ[0]
    print(f"step {first} differs ({here[first]!r} against {reference[first]!r}; at most "
          f"{max(abs(here[i] - reference[i]) for i in differ):.2g} apart in {len(here)} steps): the trained models "
          "here will be another draw, and their figures will not equal the committed ones")
    return 1


if __name__ == "__main__":
    sys.exit(main())
