"""Grounding under the rule before 2026-12-06 (facts read from the summary and all four advice fields) and the rule
now (`metrics.stated_claims`: the summary, the advice's reasoning and callout), on the same answers: every label,
then each named run's answers on the eval split (BENCHMARKS.md, twelfth session).

    python bench/regrade_grounding.py constant sft/perception-100-0 grpo/perception-100-0
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.evaluation.metrics import extract_facts, fact_holds, grounding  # noqa: E402
from chimera.io import read_parquet  # noqa: E402
from chimera.records import load_records  # noqa: E402

ALL_ADVICE = ("primary_action", "reasoning", "fallback", "callout")


def grounding_before(answer: dict, state: dict) -> tuple[int, int]:
    advice = answer.get("advice") or {}
    text = " ".join([answer["analysis"].get("situation_summary", ""), *(str(advice.get(k) or "") for k in ALL_ADVICE)])
    facts = extract_facts(text)
    return sum(fact_holds(f, state) for f in facts), len(facts)


def regrade(pairs: list[tuple[dict, dict]]) -> str:
    """`held / stated (mean over answers that state a fact)` under both rules."""
    out = []
    for rule in (grounding_before, grounding):
        counts = [rule(answer, state) for answer, state in pairs]
        shares = [h / n for h, n in counts if n]
        mean = sum(shares) / len(shares) if shares else float("nan")
        out.append(f"{sum(h for h, _ in counts)} / {sum(n for _, n in counts)} ({mean:.1%})")
    return "before " + out[0] + ", now " + out[1]


parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("runs", nargs="*", help="prediction folders under data/predictions")
args = parser.parse_args()

labels = load_records("data/labeled/labels")
print(f"labels ({len(labels)}): " + regrade([(r["analysis"], r["analysis"]["game_state"]) for r in labels.values()]))
splits = read_parquet("data/labeled/splits.parquet")
eval_ids = set(splits[splits.split == "eval"].id)
for run in args.runs:
    answers = load_records(f"data/predictions/{run}")
    pairs = [(answers[i]["analysis"], labels[i]["analysis"]["game_state"]) for i in sorted(eval_ids)
             if (answers.get(i) or {}).get("analysis")]
    print(f"{run}: " + regrade(pairs))
