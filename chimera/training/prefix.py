"""The shared-prefix loss: a batch whose rows start with the same text (the research prompt's system text) runs
that prefix once. Used by perception pretraining (chimera/training/perception.py) and screenshot SFT
(chimera/training/sft.py); tests/test_perception.py checks that loss and gradients equal the plain forward's."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def shared_prefix_length(batch: dict) -> int:
    """How many leading tokens every row of `batch` shares before its first image (the research prompt's system
    text): what `shared_prefix_loss` computes once for the whole batch."""
    ids, mm = batch["input_ids"], batch["mm_token_type_ids"]
    same = (ids == ids[:1]).all(0) & (mm == 0).all(0)
    return int(same.long().cumprod(0).sum()) - 1  # keep one token for the rows' own pass


def shared_prefix_loss(model, batch: dict, prefix_len: int) -> torch.Tensor:
    """model(**batch).loss, with the rows' common text prefix run once (batch 1) and its keys and values repeated for
    every row. The research prompt's system text is about 800 of a row's 1,100 tokens, so a research step costs little
    more than a short-prompt one. Same loss and gradients as the plain forward (tests/test_perception.py checks it):
    the prefix's cache stays in the graph. Positions come from the full rows (Qwen3-VL's 3-D rope index)."""
    from transformers import DynamicCache

    inner = model.model
    rows = batch["input_ids"].shape[0]
    position_ids = inner.compute_3d_position_ids(
        input_ids=batch["input_ids"], image_grid_thw=batch["image_grid_thw"], video_grid_thw=None,
        inputs_embeds=inner.get_input_embeddings()(batch["input_ids"]), attention_mask=batch["attention_mask"],
        cache=None, mm_token_type_ids=batch["mm_token_type_ids"])
    cache = DynamicCache(config=model.config.text_config)
    prefix = batch["input_ids"][:1, :prefix_len]
    inner.language_model(inputs_embeds=inner.get_input_embeddings()(prefix), position_ids=position_ids[:, :1, :prefix_len],
                         attention_mask=batch["attention_mask"][:1, :prefix_len], cache=cache, use_cache=True)
    cache.batch_repeat_interleave(rows)
    rest = {"input_ids": batch["input_ids"][:, prefix_len:], "attention_mask": batch["attention_mask"],
            "position_ids": position_ids[:, :, prefix_len:], "cache": cache, "pixel_values": batch["pixel_values"],
            "image_grid_thw": batch["image_grid_thw"], "mm_token_type_ids": batch["mm_token_type_ids"][:, prefix_len:],
            "labels": batch["labels"][:, prefix_len:]}
    if "weights" in batch:
        rest["weights"] = batch["weights"][:, prefix_len:]
    return causal_lm_loss(model, rest)


def causal_lm_loss(model, batch: dict) -> torch.Tensor:
    """model(**batch).loss, the mean over labelled tokens; or, where the batch carries `weights` (one per token, as its
    labels: perception pretraining's value weights), the weighted mean. The unweighted loss is the model's own, float
    for float: a run's trajectory hangs on its last bits (BENCHMARKS.md, "sixth round")."""
    if "weights" not in batch:
        return model(**batch).loss
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "weights")}
    logits = model(**inputs).logits[:, :-1].float()  # position t predicts token t+1
    labels, weights = batch["labels"][:, 1:], batch["weights"][:, 1:]  # weights are 0 where labels are -100 (encode)
    per_token = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
    return (per_token * weights).sum() / weights.sum()
