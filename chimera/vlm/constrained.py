"""Schema-constrained decoding for the local backend: llguidance masks every token that would leave the JSON
Schema of `chimera/schema.py` (`decoding_json_schema()`), one matcher per row of the batch.

Chosen by measurement (bench/bench_constrained.py, BENCHMARKS.md): llguidance against lm-format-enforcer on
the same model and frames. xgrammar was not a candidate on CPU: its wheel requires triton.

Truncation: the decoding schema bounds every string and list (schema.DECODING_LIMITS), so a complete answer
fits in `decoding_token_bound()` tokens; `LocalBackend` raises max_new_tokens to that bound when constrained.
If a caller still cuts generation shorter, the text is a valid JSON *prefix*: the parser records it as not
closed and the answer counts as not schema-valid (never silently completed).
"""

from __future__ import annotations

import json
from functools import lru_cache

import torch
from transformers import LogitsProcessor

from chimera.schema import decoding_json_schema


@lru_cache(maxsize=None)
def _grammar() -> str:
    import llguidance

    return llguidance.grammar_from("json_schema", json.dumps(decoding_json_schema()))


def ll_tokenizer(tokenizer, n_vocab: int):
    """llguidance's view of a Hugging Face fast tokenizer (about 1 s to build for a 150k vocabulary), cached on the
    tokenizer itself: it lives and dies with it (an id()-keyed table could hand a new tokenizer an old one's)."""
    import llguidance.hf

    cache = tokenizer.__dict__.setdefault("_chimera_llguidance", {})
    if n_vocab not in cache:
        cache[n_vocab] = llguidance.hf.from_tokenizer(tokenizer, n_vocab=n_vocab)
    return cache[n_vocab]


class SchemaLogitsProcessor(LogitsProcessor):
    """A transformers logits processor: at each step, tokens the schema forbids get -inf.

    Built per generate call (matchers hold the state of one batch). Rows that finished (the matcher stopped
    after EOS) may only emit EOS or padding.
    """

    def __init__(self, tokenizer, batch_size: int, prompt_len: int):
        self.tokenizer, self.batch_size, self.prompt_len = tokenizer, batch_size, prompt_len
        self.matchers = None
        self.finish_ids = sorted({i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None})

    def _start(self, n_vocab: int) -> None:
        import llguidance

        lt = ll_tokenizer(self.tokenizer, n_vocab)
        self.matchers = [llguidance.LLMatcher(lt, _grammar()) for _ in range(self.batch_size)]
        for m in self.matchers:
            if m.is_error():
                raise ValueError(f"decoding schema rejected by llguidance: {m.get_error()}")

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        import llguidance.torch as lt

        if self.matchers is None:
            self._start(scores.shape[-1])
        elif input_ids.shape[1] > self.prompt_len:
            for m, token in zip(self.matchers, input_ids[:, -1].tolist()):
                if not m.is_stopped():
                    m.consume_token(token)
        bitmask = lt.allocate_token_bitmask(len(self.matchers), scores.shape[-1])
        for row, m in enumerate(self.matchers):
            if not m.is_stopped():
                lt.fill_next_token_bitmask(m, bitmask, row)
        allowed = ((bitmask.unsqueeze(-1) >> torch.arange(32, dtype=torch.int32)) & 1).reshape(len(self.matchers), -1)
        allowed = allowed[:, :scores.shape[-1]].bool().to(scores.device)
        for row, m in enumerate(self.matchers):
            if m.is_stopped():
                allowed[row] = False
                allowed[row, self.finish_ids] = True
        return scores.masked_fill(~allowed, float("-inf"))
