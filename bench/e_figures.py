"""E's figures at a git revision (the workspace's commit or a `dvc exp` ref), as BENCHMARKS.md quotes them: each E
minus its SFT cell per seed and over seeds (from metrics/report.json), its free (unconstrained) decoding beside the
SFT cell's, and its training run (seconds, chosen-token share, forced-token NLL, mean answer length).

    python bench/e_figures.py HEAD $(git for-each-ref refs/exps --format='%(objectname)')
"""

import argparse
import json
import subprocess
from statistics import mean

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("revs", nargs="+", help="git revisions (commits or experiment refs)")
args = parser.parse_args()


def show(rev: str, path: str) -> str | None:
    out = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


for rev in args.revs:
    report = json.loads(show(rev, "metrics/report.json"))
    print(f"== {rev[:10]}")
    for e in (report.get("e_vs_sft") or {}).values():
        for column in ("value_accuracy", "analysis_accuracy", "consistency", "grounding"):
            d = e[column]
            print(f"  {e['label']:10s} {column:18s} {100 * d['delta']:+.1f} [{100 * d['ci95'][0]:+.1f}, "
                  f"{100 * d['ci95'][1]:+.1f}] per seed " + ", ".join(f"{100 * x:+.1f}" for x in d["per_seed"]))
        for name in [*e["sft"], *e["e"]]:
            free = report["rows"][name].get("unconstrained") or {}
            print(f"  {name:30s} free schema-valid {free.get('schema_compliance', {}).get('value')}, "
                  f"free value accuracy {free.get('value_accuracy', {}).get('value')}")
        for name in e["e"]:
            train = json.loads(show(rev, f"metrics/train/{name}.json"))
            nll = train.get("forced_token_nll") or []
            lengths = show(rev, f"dvclive/{name}/plots/metrics/completions/mean_length.tsv") or ""
            steps = [float(line.split("\t")[-1]) for line in lengths.strip().splitlines()[1:]]
            print(f"  {name:30s} {train['train_seconds']:.0f} s, chosen tokens {train.get('free_token_fraction')}, "
                  f"forced-token NLL first/last 10 steps {round(mean(nll[:10]), 3) if nll else None} -> "
                  f"{round(mean(nll[-10:]), 3) if nll else None}, mean answer {mean(steps) if steps else 0:.0f} tokens")
