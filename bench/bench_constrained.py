"""Schema-constrained decoding on CPU: llguidance (the pipeline's) against lm-format-enforcer and free decoding, on
the same model folders and evaluation frames. Per model and decoder: schema-valid rate (the evaluation's),
game_state value accuracy (the one accuracy), output tokens per second, seconds per frame.

    python bench/bench_constrained.py --models models/perception models/sft/perception-100-0/final_model/merged_16bit --frames 24

lm-format-enforcer is optional (`pip install lm-format-enforcer`); xgrammar was not measured: its wheel requires
triton. Run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from chimera.evaluation.metrics import DEFAULT_TOLERANCES, frame_value_accuracy, score_frame  # noqa: E402
from chimera.io import read_parquet  # noqa: E402
from chimera.records import load_records  # noqa: E402
from chimera.vlm.backends import LocalBackend  # noqa: E402
from chimera.vlm.models import ModelConfig, load_model  # noqa: E402


def lmfe_prefix_fn(tokenizer):
    """lm-format-enforcer's transformers prefix function over the same decoding schema. Its integration (0.11.3)
    imports `transformers.tokenization_utils`, which transformers 5 renamed: alias it before importing."""
    import transformers.tokenization_utils_base as base

    sys.modules.setdefault("transformers.tokenization_utils", base)
    from lmformatenforcer import JsonSchemaParser
    from lmformatenforcer.integrations.transformers import build_transformers_prefix_allowed_tokens_fn

    from chimera.schema import decoding_json_schema

    def no_pattern(node):  # lm-format-enforcer cannot combine a pattern with maxLength: it gets the bounds only
        if isinstance(node, dict):
            return {k: no_pattern(v) for k, v in node.items() if k not in ("pattern", "x-guidance")}
        return [no_pattern(v) for v in node] if isinstance(node, list) else node

    return build_transformers_prefix_allowed_tokens_fn(tokenizer, JsonSchemaParser(no_pattern(decoding_json_schema())))


class LmfeBackend(LocalBackend):
    """The same backend, constrained by lm-format-enforcer's prefix function instead of llguidance."""

    def constraint(self, batch_size: int, prompt_len: int) -> dict:
        return {"prefix_allowed_tokens_fn": lmfe_prefix_fn(self.processor.tokenizer)}


def run(backend, frames, labels) -> dict:
    t0 = time.perf_counter()
    predictions = backend.analyze(frames)
    seconds = time.perf_counter() - t0
    tokens = sum(p.output_tokens for p in predictions)
    accuracy = [frame_value_accuracy(score_frame(p.id, p.record("bench"), labels[p.id], DEFAULT_TOLERANCES))
                for p in predictions]
    return {"schema_valid": float(np.mean([p.parse.schema_valid for p in predictions])),
            "value_accuracy": float(np.nanmean(accuracy)), "tokens_per_s": tokens / seconds,
            "s_per_frame": seconds / len(frames), "mean_output_tokens": tokens / len(frames)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["models/perception"])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--decoders", nargs="+", default=["free", "llguidance", "lmfe"])
    args = parser.parse_args()
    splits = read_parquet("data/labeled/splits.parquet")
    rows = splits[(splits.split == "eval") & (splits.source == "synthetic")].head(args.frames)
    labels = load_records("data/labeled/labels")
    frames = list(zip(rows.id, rows.path))
    results = []
    for path in args.models:
        model, processor = load_model(ModelConfig(name=path))
        for decoder in args.decoders:
            cls = LmfeBackend if decoder == "lmfe" else LocalBackend
            backend = cls(model, processor, path, batch_size=args.batch_size, constrained=decoder != "free")
            result = {"model": path, "decoder": decoder, **run(backend, frames, labels)}
            results.append(result)
            print(json.dumps(result), flush=True)
    print("\n| model | decoder | schema-valid | value accuracy | output tokens/s | s/frame | tokens/answer |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['decoder']} | {r['schema_valid']:.0%} | {r['value_accuracy']:.1%} | "
              f"{r['tokens_per_s']:.0f} | {r['s_per_frame']:.2f} | {r['mean_output_tokens']:.0f} |")


if __name__ == "__main__":
    main()
