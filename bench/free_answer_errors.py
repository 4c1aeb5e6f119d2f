"""Why a model's free (unconstrained) answers are not schema-valid: each answer's first error, counted, with the
output length and the tail of one answer per error (BENCHMARKS.md, thirteenth session).

    python bench/free_answer_errors.py data/predictions/grpo/pretrain_strategy-100-1/unconstrained
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.records import load_records  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("folder", help="a folder of prediction records (e.g. a run's unconstrained/ answers)")
args = parser.parse_args()

answers = load_records(args.folder)
first_error = {i: ((r.get("errors") or ["valid"])[0].split(":")[0]) for i, r in answers.items()}
print(f"{len(answers)} answers")
for error, n in Counter(first_error.values()).most_common():
    example = next(answers[i] for i, e in first_error.items() if e == error)
    tokens = sorted(answers[i].get("output_tokens") or 0 for i, e in first_error.items() if e == error)
    print(f"{n:4d}  {error}  (output tokens: median {tokens[len(tokens) // 2]}, max {tokens[-1]})")
    print(f"      ...{(example.get('raw_text') or '')[-160:]!r}")
