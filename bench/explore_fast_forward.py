"""Would fast-forwarding the schema's forced tokens speed up constrained decoding? (Measured: no; BENCHMARKS.md.)

Counts, on a model's committed eval answers, the share of tokens the decoding schema forces (llguidance's
`compute_ff_tokens`: keys, punctuation, the rest of an enum once begun), then decodes N eval frames twice in one
thread: with `LocalBackend.generate` (transformers' generate, one token a step) and with a plain loop that feeds
each row its sampled token plus the tokens the schema forces after it in one forward pass (rows padded to the
longest chunk and masked), and says whether the answers agree.

    python bench/explore_fast_forward.py                                   # B at seed 0, 32 frames
    python bench/explore_fast_forward.py --model models/perception --predictions data/predictions/A_zeroshot
"""

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import llguidance  # noqa: E402
import llguidance.torch as lt  # noqa: E402

from chimera.io import load_params, open_image, read_parquet  # noqa: E402
from chimera.prompts import chat_messages  # noqa: E402
from chimera.vlm.backends import LocalBackend  # noqa: E402
from chimera.vlm.constrained import _grammar, ll_tokenizer  # noqa: E402
from chimera.vlm.models import ModelConfig, load_model  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--model", default="models/sft/perception-100-0/final_model/merged_16bit")
parser.add_argument("--predictions", default="data/predictions/sft/perception-100-0")
parser.add_argument("--frames", type=int, default=32)
args = parser.parse_args()

torch.set_num_threads(1)  # as an infer worker decodes
p = load_params("params.yaml")
model, processor = load_model(ModelConfig.from_params(p["model"], name=args.model))
tok = processor.tokenizer
backend = LocalBackend(model, processor, "bench", batch_size=p["infer"]["batch_size"],
                       max_new_tokens=p["infer"]["max_new_tokens"], constrained=True)
n_vocab = model.lm_head.out_features
ltok = ll_tokenizer(tok, n_vocab)

# 1. how many of an answer's tokens does the schema force?
total = forced = 0
for path in sorted(glob.glob(f"{args.predictions}/*.json"))[:40]:
    ids = tok(json.load(open(path))["raw_text"], add_special_tokens=False)["input_ids"]
    matcher, i = llguidance.LLMatcher(ltok, _grammar()), 0
    while i < len(ids) and not matcher.is_stopped():
        ff = matcher.compute_ff_tokens()
        if ff and ids[i:i + len(ff)] == ff:
            matcher.consume_tokens(ff)
            i, forced, total = i + len(ff), forced + len(ff), total + len(ff)
            continue
        matcher.consume_token(ids[i])
        i, total = i + 1, total + 1
print(f"forced by the schema: {forced} of {total} answer tokens ({forced / max(1, total):.0%}), 40 answers")


def fast_forward_generate(messages_batch: list, max_new_tokens: int) -> list[str]:
    """Greedy and constrained, each step feeding every row its pick plus the tokens the schema forces after it."""
    inputs = processor.apply_chat_template(messages_batch, add_generation_prompt=True, tokenize=True,
                                           return_dict=True, return_tensors="pt",
                                           processor_kwargs={"padding": True, "padding_side": "left"})
    rows = inputs["input_ids"].shape[0]
    with torch.inference_mode():
        out = model(**inputs, use_cache=True, logits_to_keep=1)
        matchers = [llguidance.LLMatcher(ltok, _grammar()) for _ in range(rows)]
        cache, mask, logits = out.past_key_values, inputs["attention_mask"], out.logits[:, -1]
        next_position = (mask.sum(1, keepdim=True) + model.model.rope_deltas).squeeze(1)  # mrope text positions
        generated, done = [[] for _ in range(rows)], [False] * rows
        bitmask = lt.allocate_token_bitmask(rows, n_vocab)
        while True:
            for row, matcher in enumerate(matchers):
                if not done[row]:
                    lt.fill_next_token_bitmask(matcher, bitmask, row)
            lt.apply_token_bitmask_inplace(logits, bitmask)
            picks, chunks = logits.argmax(-1).tolist(), []
            for row, matcher in enumerate(matchers):
                if done[row]:
                    chunks.append([])
                    continue
                matcher.consume_token(picks[row])
                ff = matcher.compute_ff_tokens()
                if ff:
                    matcher.consume_tokens(ff)
                chunk = [t for t in [picks[row], *ff] if t != tok.eos_token_id][:max_new_tokens - len(generated[row])]
                generated[row] += chunk
                done[row] = matcher.is_accepting() or matcher.is_stopped() or len(generated[row]) >= max_new_tokens
                chunks.append(chunk)
            if all(done):
                return [tok.decode(g, skip_special_tokens=True) for g in generated]
            width = max(len(c) for c in chunks)
            ids = torch.full((rows, width), tok.pad_token_id)
            new_mask = torch.zeros((rows, width), dtype=mask.dtype)
            for row, chunk in enumerate(chunks):
                if chunk and not done[row]:
                    ids[row, :len(chunk)], new_mask[row, :len(chunk)] = torch.tensor(chunk), 1
            positions = next_position.view(rows, 1) + torch.arange(width).view(1, width)
            mask = torch.cat([mask, new_mask], 1)
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions.view(1, rows, width).expand(3, -1, -1),
                        past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            logits = out.logits[torch.arange(rows), torch.tensor([max(len(c), 1) - 1 for c in chunks])].clone()
            next_position = next_position + torch.tensor([0 if done[r] else len(c) for r, c in enumerate(chunks)])


# 2. the same frames decoded both ways
splits = read_parquet("data/labeled/splits.parquet")
frames = splits[splits.split == "eval"].head(args.frames)
images = sorted([open_image(path) for path in frames.path], key=lambda im: im.width * im.height)
batches = [[chat_messages(backend.view.images(im)) for im in images[s:s + backend.batch_size]]
           for s in range(0, len(images), backend.batch_size)]
backend.generate(batches[0]), fast_forward_generate(batches[0], backend.max_new_tokens)  # warm both
start = time.perf_counter()
plain = [text for batch in batches for text, _, _ in backend.generate(batch)]
plain_s = time.perf_counter() - start
start = time.perf_counter()
fast = [text for batch in batches for text in fast_forward_generate(batch, backend.max_new_tokens)]
fast_s = time.perf_counter() - start
print(f"{len(images)} frames, one thread: generate {plain_s:.1f} s, fast-forward {fast_s:.1f} s "
      f"({plain_s / fast_s:.2f}x); the same answer on {sum(a == b for a, b in zip(plain, fast))} of {len(plain)}")
