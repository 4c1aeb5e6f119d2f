"""Memory and time of GRPO's scoring over the allowed tokens (`grpo.logprobs_over_allowed`) at the 8B's vocabulary:
`allowed_token_logps` forward and backward on random hidden states, formed a tile of positions at a time (the
default) against the whole batch's logits at once. Each setting runs in a fresh process, so its peak resident memory
is its own.

    python bench/bench_allowed_logps.py                        # 8 completions x 400 positions, vocabulary 151,936
    python bench/bench_allowed_logps.py --rows 16 --width 512
"""

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--rows", type=int, default=8, help="completions in the batch")
parser.add_argument("--positions", type=int, default=400, help="completion tokens per row")
parser.add_argument("--vocab", type=int, default=151_936, help="Qwen3-VL's vocabulary")
parser.add_argument("--width", type=int, default=256, help="hidden width (the 8B's is 4,096; memory is the logits')")
parser.add_argument("--tile", type=int, default=0, help="positions per tile: 0 the default, -1 the whole batch")
parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # run one setting in this process
args = parser.parse_args()

if args.one:
    import torch

    from chimera.training.grpo import allowed_token_logps

    torch.manual_seed(0)
    head = torch.nn.Linear(args.width, args.vocab, bias=False)
    hidden = torch.randn(args.rows, args.positions, args.width, requires_grad=True)
    tokens = torch.randint(0, args.vocab, (args.rows, args.positions))
    allowed = torch.empty(args.rows, args.positions, args.vocab, dtype=torch.bool)
    for row in range(args.rows):  # a row at a time: the random floats behind a whole batch of flags would be the peak
        allowed[row] = torch.rand(args.positions, args.vocab) > 0.5
    allowed.scatter_(-1, tokens.unsqueeze(-1), True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    tile = None if args.tile == 0 else args.rows * args.positions if args.tile < 0 else args.tile
    logps, entropy = allowed_token_logps(head, hidden, tokens, allowed, 0.7, tile_tokens=tile)
    (logps.sum() + entropy.sum()).backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{seconds:.2f} {before / 1024:.0f} {peak / 1024:.0f}")
    sys.exit(0)

from chimera.training.grpo import LOGIT_TILE_ELEMENTS  # noqa: E402

logits_gb = args.rows * args.positions * args.vocab * 4 / 1e9
print(f"{args.rows} rows x {args.positions} positions, vocabulary {args.vocab:,}, width {args.width}: "
      f"the batch's float32 logits are {logits_gb:.2f} GB")
for tile, name in [(0, f"tiles of {max(1, LOGIT_TILE_ELEMENTS // args.vocab)} positions (the default)"),
                   (-1, "the whole batch at once")]:
    cmd = [sys.executable, __file__, "--one", "--tile", str(tile), "--rows", str(args.rows), "--positions",
           str(args.positions), "--vocab", str(args.vocab), "--width", str(args.width)]
    seconds, before, peak = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
    print(f"{name}: forward + backward {float(seconds):.1f} s, peak resident memory {int(peak):,} MB "
          f"({int(peak) - int(before):,} MB above the inputs')")
