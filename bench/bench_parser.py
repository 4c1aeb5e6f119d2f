"""Partial-JSON parsing of model output: Chimera's parser (pydantic-core `from_json(allow_partial=True)`) against
the json-repair package, on a fuzz corpus built from real labels, and on adversarial sizes.

Corpus: N truth labels of sampled synthetic states (renderer + rule strategist), each damaged K ways: cut at
random points (truncation by max_new_tokens), wrapped in prose and fences, single quotes, Python literals,
trailing commas. Scored: exceptions; complete-but-damaged answers recovered whole; and, over the cuts, game_state
values returned that differ from the truth (a number cut short, a list missing items): must be 0.
json-repair is optional (`pip install json-repair`); both get the same post-processing (schema validation).

    python bench/bench_parser.py --labels 40 --cuts 20
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chimera.schema import Analysis, GameState, parse_model_output, to_json  # noqa: E402
from chimera.screens.hud import sample_state  # noqa: E402
from chimera.strategist import Context, analyse  # noqa: E402


def corpus(n: int, cuts: int, seed: int = 0):
    rng = random.Random(seed)
    for i in range(n):
        state, _ = sample_state(random.Random(i))
        analysis, advice = analyse(state, Context())
        label = Analysis(game_state=state, analysis=analysis, advice=advice)
        text = to_json(label)
        truth = label.model_dump(mode="json")["game_state"]
        damaged = [f"Sure! Here is the analysis:\n```json\n{text}\n```\nGood luck.",
                   str(json.loads(text)),                                   # Python repr: single quotes, None
                   text.replace("}", ",}").replace("]", ",]"),              # trailing commas
                   "Analysis: " + text + " -- hope it helps"]
        yield "damaged", damaged, truth
        yield "cut", [text[:rng.randrange(1, len(text))] for _ in range(cuts)], truth


def pydantic_core_parser(text: str) -> dict:
    return parse_model_output(text).game_state_fields()


def json_repair_parser(text: str) -> dict:
    import json_repair

    obj = json_repair.loads(text)
    state = (obj or {}).get("game_state") if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        return {}
    out = {}
    for key, value in state.items():  # the same per-field validation as Chimera's
        try:
            out[key] = GameState.model_validate({key: value}).model_dump(mode="json")[key]
        except Exception:  # noqa: BLE001 - invalid or unknown field: dropped
            continue
    return out


def adversarial() -> dict[str, str]:
    answer = to_json(Analysis.model_validate(json.loads(to_json(_example()))))
    return {"5 MB of '{'": "{" * 5_000_000, "1 MB of '{' then an answer": "{" * 1_000_000 + " " + answer,
            "5 MB of '{\"'": '{"' * 2_500_000,
            "5 MB string value": '{"game_state": {"map_name": "' + "x" * 5_000_000 + '"}}'}


def _example():
    from chimera.schema import example_analysis

    return example_analysis()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=40)
    parser.add_argument("--cuts", type=int, default=20)
    args = parser.parse_args()
    parsers = {"pydantic-core (chimera)": pydantic_core_parser}
    try:
        import json_repair  # noqa: F401

        parsers["json-repair"] = json_repair_parser
    except ImportError:
        print("json-repair not installed: skipped")
    items = list(corpus(args.labels, args.cuts))
    for name, parse in parsers.items():
        errors = recovered = damaged = wrong = cut_values = 0
        start = time.perf_counter()
        for kind, texts, truth in items:
            for text in texts:
                try:
                    got = parse(text)
                except Exception:  # noqa: BLE001 - counted
                    errors += 1
                    continue
                if kind == "damaged":
                    damaged += 1
                    recovered += got == truth
                else:
                    cut_values += len(got)
                    wrong += sum(got[k] != truth.get(k) for k in got)
        seconds = time.perf_counter() - start
        print(f"{name}: {damaged + len(items) // 2 * args.cuts} texts in {seconds:.2f} s; exceptions {errors}; "
              f"damaged answers recovered whole {recovered}/{damaged}; values returned from cut answers "
              f"{cut_values}, of which wrong {wrong}")
        for label, text in adversarial().items():
            start = time.perf_counter()
            try:
                ok = parse(text) != {}
            except Exception as exc:  # noqa: BLE001
                ok = f"raised {type(exc).__name__}"
            print(f"    {label}: {time.perf_counter() - start:.2f} s, fields found: {ok}")


if __name__ == "__main__":
    main()
