"""GRPO with trl from an SFT output (or the base model), six weighted reward signals (rewards.py).

The dataset is conversational `prompt` + `image`, with `label` (the label's Analysis JSON) and `p_win`
columns that trl forwards to the reward functions; trl logs each reward's mean per step.

Sampling is schema-constrained by default (`GRPORunConfig.constrained`), as the evaluation decodes: unconstrained,
the tiny model's samples at temperature 1 rarely close their JSON, so the consistency, strategy and advice rewards
read nothing and score 0 for every sample of a group, and a group whose rewards are all equal has no advantage to
learn from. Constrained, every sample parses and the rewards compare what the samples say.

Constrained, a token the schema forces (the only one it allows: a key, a quote, a brace) had probability 1 under the
policy that sampled it, so the policy gradient through it is zero. trl scores tokens by the model's unconstrained
log-probability, which would push each forced token up or down with its sample's advantage: noise, which left one
run writing 5% valid answers when it decoded freely (BENCHMARKS.md). So forced tokens leave the loss
(`GRPORunConfig.forced_tokens_in_loss`), through the mask trl keeps for tokens the model did not choose (its tool
mask).

The chosen tokens are still scored by the unconstrained distribution, whose mass on what the schema forbade changes
with every update. `GRPORunConfig.logprobs_over_allowed` scores them by the policy that sampled them instead: the
model's distribution renormalized over the tokens the schema allowed there, the exact policy gradient of constrained
sampling. Measured at two seeds, it keeps the model's own JSON when decoding freely and gains about a third less
grounding (BENCHMARKS.md, fourteenth and fifteenth sessions); it is off by default.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.utils.checkpoint

from chimera.prompts import SYSTEM_PROMPT, USER_PROMPT
from chimera.training.rewards import REWARDS
from chimera.training.sft import (LANGUAGE_LORA_TARGETS, dvclive_callbacks, finish_checkpoints, load_for_training,
                                  merge_and_save, peak_memory_mb, resume_point)


@dataclass
class GRPORunConfig:
    base_model: str
    output_dir: str
    max_steps: int = 10
    learning_rate: float = 5e-5
    per_device_train_batch_size: int = 4
    num_generations: int = 4
    max_completion_length: int = 384
    temperature: float = 1.0
    beta: float = 0.0
    num_iterations: int = 1                   # optimizer steps on each batch of samples (trl's mu, clipped at epsilon)
    reward_weights: list[float] = field(default_factory=lambda: [0.05, 0.5, 0.1, 0.2, 0.15, 0.1])
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: str | list[str] = LANGUAGE_LORA_TARGETS
    modules_to_save: list[str] | None = None
    max_pixels: int = 448 * 252
    min_pixels: int = 65536
    quantization: str | None = None
    gradient_checkpointing: bool = False
    logging_steps: int = 1
    seed: int = 0
    dvclive_dir: str | None = None
    merge: bool = True
    save_steps: int = 5                       # a checkpoint every this many steps, resumed after a crash
    constrained: bool = True                  # sample inside the decoding schema (llguidance), as the evaluation does
    checkpoint_dir: str | None = None         # checkpoints here (outside DVC's output) until the run finishes
    forced_tokens_in_loss: bool = False       # constrained: train on the tokens the schema forced too (module doc)
    logprobs_over_allowed: bool = False       # constrained: score each token by the policy that sampled it (module doc)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def grpo_dataset(examples: list[tuple[str, dict, float | None]], view=None):
    """(image path, label Analysis JSON, p_win) -> prompt/images/label/p_win rows, each frame shown as the base
    model's `view`; an unreadable image is reported and left out."""
    from datasets import Dataset

    from chimera.io import readable_images
    from chimera.vlm.views import WHOLE_FRAME

    view = view or WHOLE_FRAME
    rows = readable_images(examples, path_of=lambda e: e[0])
    return Dataset.from_dict({
        "prompt": [[{"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
                    {"role": "user", "content": [{"type": "image"}] * view.n_images + [{"type": "text", "text": USER_PROMPT}]}]
                   for _ in rows],
        "images": [view.images(image) for _, image in rows],
        "label": [json.dumps(label) for (_, label, _), _ in rows],
        "p_win": [p for (_, _, p), _ in rows],
        "example": list(range(len(rows)))})  # which prompt a completion answers (RewardLog pairs a prompt's visits)


def reward_windows(history: list[dict], window: int | None = None) -> dict:
    """Mean weighted reward and mean of each signal over the first and the last `window` steps (a third of the run by
    default, at most 10): whether GRPO moved its reward, less noisy than one step's batch of prompts."""
    steps = [h for h in history if "reward" in h]
    window = window or max(1, min(10, len(steps) // 3))
    keys = ["reward", *(f"rewards/{fn.__name__}/mean" for fn in REWARDS)]

    def mean(rows):
        return {k.split("/")[1] if "/" in k else k: round(sum(h[k] for h in rows) / len(rows), 4)
                for k in keys if rows and all(k in h for h in rows)}

    return {"window": window, "first": mean(steps[:window]), "last": mean(steps[-window:])}


class RewardLog:
    """Every completion's reward from each signal, with its step and its prompt (the dataset's `example` column),
    appended to a JSON lines file as trl scores them. A step's mean reward depends on which prompts it drew as much as
    on the model; a prompt met again later, against itself, does not (`paired_reward_change`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def keep_before(self, step: int) -> None:
        """A run resumed at `step` scores its later steps again: their rows from before the crash go."""
        rows = [r for r in self.rows() if r["step"] < step]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def rows(self) -> list[dict]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def wrap(self, reward_fn):
        """`reward_fn` as trl calls it, its values written down; trl passes its state (the step) with the columns."""

        @functools.wraps(reward_fn)  # the name trl logs the signal under stays the function's own
        def logged(completions, **row):
            values = reward_fn(completions, **row)
            state, examples = row.get("trainer_state"), row.get("example")
            if state is not None and examples is not None:
                with open(self.path, "a") as f:
                    f.write(json.dumps({"step": state.global_step, "signal": reward_fn.__name__,
                                        "example": list(examples), "value": [float(v) for v in values]}) + "\n")
            return values

        return logged


def paired_reward_change(rows: list[dict], weights: list[float]) -> dict:
    """Each prompt's mean reward over its completions at the first step that drew it against the last (prompts drawn
    at two steps or more): the mean of the differences with a 95% t-interval over prompts, for the weighted reward
    and each signal. Pairing takes out how hard a step's prompts were, which a comparison of steps leaves in."""
    from collections import defaultdict

    from scipy import stats

    names = [fn.__name__ for fn in REWARDS]
    visits = defaultdict(lambda: defaultdict(list))  # (example, step) -> signal -> its completions' values
    for row in rows:
        for example, value in zip(row["example"], row["value"]):
            visits[(example, row["step"])][row["signal"]].append(value)
    steps_of = defaultdict(set)
    for (example, step), scored in visits.items():
        if all(scored.get(name) for name in names):  # a step cut short by a crash scored only some signals
            steps_of[example].add(step)
    pairs = {example: (min(steps), max(steps)) for example, steps in steps_of.items() if len(steps) > 1}

    def mean_of(example, step, signal):
        if signal == "reward":  # trl's weighted sum, per completion and so of the means
            return sum(w * mean_of(example, step, name) for w, name in zip(weights, names))
        values = visits[(example, step)][signal]
        return sum(values) / len(values)

    out = {"prompts": len(pairs)}
    for signal in ["reward", *names]:
        first = [mean_of(e, a, signal) for e, (a, _) in pairs.items()]
        last = [mean_of(e, b, signal) for e, (_, b) in pairs.items()]
        diffs = [y - x for x, y in zip(first, last)]
        entry = {"first": None, "last": None, "change": None, "ci": None}
        if diffs:
            entry.update(first=sum(first) / len(first), last=sum(last) / len(last), change=sum(diffs) / len(diffs))
        if len(set(diffs)) > 1:
            low, high = stats.ttest_1samp(diffs, 0.0).confidence_interval(0.95)
            entry["ci"] = [float(low), float(high)]
        out[signal] = entry
    return out


class ForcedTokens:
    """A logits processor placed after the schema's: at each generated position, for each row, whether the schema
    left exactly one token (the sampling had no choice there), and with `keep_allowed` the tokens it allowed (on the
    8B's vocabulary, 16 rows x 400 positions are about 1 GB of flags in CPU memory). One per `generate` call."""

    def __init__(self, keep_allowed: bool = False):
        self.steps: list[torch.Tensor] = []
        self.allowed: list[torch.Tensor] | None = [] if keep_allowed else None

    def __call__(self, input_ids, scores):
        allowed = torch.isfinite(scores)
        self.steps.append((allowed.sum(-1) == 1).cpu())
        if self.allowed is not None:
            self.allowed.append(allowed.cpu())
        return scores

    def rows(self) -> list[list[bool]]:
        return torch.stack(self.steps, dim=1).tolist() if self.steps else []

    def allowed_rows(self, length: int) -> torch.Tensor:
        """[rows, length, vocab]: the allowed tokens at each of the first `length` positions; every token past the
        last sampled one (trl pads a batch's completions to the longest, and masks the padding out of the loss)."""
        steps = torch.stack(self.allowed, dim=1)[:, :length]
        out = torch.ones(steps.shape[0], length, steps.shape[2], dtype=torch.bool)
        out[:, :steps.shape[1]] = steps
        return out


def constrain_generation(model, tokenizer, forced: list | None = None, keep_allowed: bool = False) -> None:
    """Make `model.generate` sample inside the decoding schema: each call gets a fresh SchemaLogitsProcessor for its
    batch. trl's GRPOTrainer calls `generate` on the model it trains and takes no logits processor of its own.
    With a `forced` list, each call also appends the ForcedTokens that recorded which of its tokens were forced
    (and, with `keep_allowed`, which tokens the schema allowed)."""
    from transformers import LogitsProcessorList

    from chimera.vlm.constrained import SchemaLogitsProcessor

    generate = model.generate

    def constrained_generate(*args, **kwargs):
        ids = kwargs["input_ids"]
        processors = LogitsProcessorList(kwargs.pop("logits_processor", None) or [])
        processors.append(SchemaLogitsProcessor(tokenizer, ids.shape[0], ids.shape[1]))
        if forced is not None:
            forced.append(ForcedTokens(keep_allowed))
            processors.append(forced[-1])
        return generate(*args, logits_processor=processors, **kwargs)

    model.generate = constrained_generate


def free_token_mask(forced_rows: list[list[bool]], completion_ids: list[list[int]]) -> list[list[int]]:
    """1 for each completion token the model chose, 0 for each the schema forced; trl cuts a completion after its
    EOS, so a row of flags may run longer than its completion."""
    if len(forced_rows) != len(completion_ids):
        raise RuntimeError(f"forced-token flags for {len(forced_rows)} completions, but {len(completion_ids)} came back")
    return [[0 if flag else 1 for flag in row[:len(ids)]] for row, ids in zip(forced_rows, completion_ids)]


def leave_forced_tokens_out_of_the_loss(trainer, forced: list) -> None:
    """Wrap trl's `_generate` so that it returns the free-token mask where trl keeps its tool mask: trl multiplies
    the completion mask by it in the loss and in the token count that normalizes it. trl logged the completion
    lengths inside `_generate`, so they still count every token; `completions/free_token_fraction` logs the share
    the model chose."""
    generate = trainer._generate

    def generate_and_mask(prompts):
        forced.clear()
        prompt_ids, completion_ids, tool_mask, *rest = generate(prompts)
        if tool_mask is not None:
            raise ValueError("GRPO with tools: the forced-token mask would replace trl's tool mask")
        free = free_token_mask([row for record in forced for row in record.rows()], completion_ids)
        mode = "train" if trainer.model.training else "eval"
        trainer._metrics[mode]["completions/free_token_fraction"].append(
            sum(map(sum, free)) / max(1, sum(map(len, free))))
        return (prompt_ids, completion_ids, free, *rest)

    trainer._generate = generate_and_mask


LOGIT_TILE_ELEMENTS = 2 ** 25  # logits formed at once when scoring over the allowed tokens: 128 MB in float32


def allowed_token_logps(head, hidden, tokens, allowed, temperature: float, tile_tokens: int | None = None):
    """Each token's log-probability, and each position's entropy, under the distribution `head` gives `hidden` at
    `temperature`, renormalized over the `allowed` tokens. hidden [rows, n, width], tokens [rows, n], allowed
    [rows, n, vocab]. The logits are formed a tile of positions at a time under activation checkpointing, in the
    forward and again in the backward: on the 8B's vocabulary a batch's logits at once would be about 4 GB."""

    def tile(h, t, a):
        logp = (head(h).float() / temperature).masked_fill(~a, -1e4).log_softmax(-1)  # -1e4: p log p stays 0
        return logp.gather(-1, t.unsqueeze(-1)).squeeze(-1), -(logp.exp() * logp).sum(-1)

    if allowed.shape[-1] != head.weight.shape[0]:
        raise ValueError(f"allowed-token flags over {allowed.shape[-1]} tokens, but the LM head scores "
                         f"{head.weight.shape[0]}")
    h, t, a = hidden.reshape(-1, hidden.shape[-1]), tokens.reshape(-1), allowed.reshape(-1, allowed.shape[-1])
    step = tile_tokens or max(1, LOGIT_TILE_ELEMENTS // a.shape[-1])
    parts = [torch.utils.checkpoint.checkpoint(tile, h[i:i + step], t[i:i + step], a[i:i + step], use_reentrant=False)
             for i in range(0, len(t), step)]
    return tuple(torch.cat(x).reshape(tokens.shape) for x in zip(*parts))  # log-probabilities, entropies


class AllowedTokenScorer:
    """Stands in for the model in trl's scoring loop (`_get_per_token_logps_and_entropies`), which calls it on each
    chunk of rows as it would call the model's fused LM head: the backbone's last hidden states, then
    `allowed_token_logps`. trl's fused head never forms the logits, so it cannot mask them."""

    def __init__(self, model, allowed: torch.Tensor, logits_to_keep: int, temperature: float):
        self.model = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.allowed, self.keep, self.temperature, self.row = allowed, logits_to_keep, temperature, 0

    def __call__(self, labels=None, fused_lm_head=True, **inputs):  # trl's fused-head call; the scorer needs neither
        hidden = self.model.base_model(**inputs, use_cache=False).last_hidden_state[:, -self.keep - 1:-1]
        rows = slice(self.row, self.row + hidden.shape[0])
        self.row = rows.stop
        logps, entropy = allowed_token_logps(self.model.get_output_embeddings(), hidden,
                                             inputs["input_ids"][:, -self.keep:],
                                             self.allowed[rows].to(hidden.device), self.temperature)
        return SimpleNamespace(log_probs=logps, entropy=entropy, aux_loss=None)


def score_over_allowed(trainer, forced: list) -> None:
    """Make trl's loss score each sampled token by the policy that sampled it (`allowed_token_logps`). A batch's
    allowed-token flags travel with it through trl's shuffle and split (`allowed` beside its other tensors); its loss
    takes them out and scores through an AllowedTokenScorer."""
    score, compute_loss, logps_of = (trainer._generate_and_score_completions, trainer.compute_loss,
                                     trainer._get_per_token_logps_and_entropies)
    in_loss = []  # the allowed-token flags of the batch whose loss is being computed

    def score_and_keep_allowed(inputs):
        out = score(inputs)
        out["allowed"] = torch.cat([record.allowed_rows(out["completion_ids"].shape[1]) for record in forced])
        return out

    def loss_over_allowed(model, inputs, *args, **kwargs):
        in_loss.append(inputs["allowed"])
        try:
            return compute_loss(model, {k: v for k, v in inputs.items() if k != "allowed"}, *args, **kwargs)
        finally:
            in_loss.clear()

    def logps_over_allowed(model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        if in_loss:
            model = AllowedTokenScorer(model, in_loss[0], logits_to_keep, trainer.temperature)
        return logps_of(model, input_ids, attention_mask, logits_to_keep, *args, **kwargs)

    trainer._generate_and_score_completions = score_and_keep_allowed
    trainer.compute_loss = loss_over_allowed
    trainer._get_per_token_logps_and_entropies = logps_over_allowed


def build_grpo_trainer(cfg: GRPORunConfig, dataset, callbacks=()):
    """trl's GRPOTrainer for `cfg`, sampling inside the schema when constrained, and the RewardLog it writes."""
    from peft import LoraConfig, get_peft_model
    from trl import GRPOConfig, GRPOTrainer

    from chimera.schema import decoding_token_bound

    if len(cfg.reward_weights) != len(REWARDS):
        names = ", ".join(fn.__name__.removesuffix("_reward") for fn in REWARDS)
        raise ValueError(f"grpo.reward_weights needs {len(REWARDS)} weights ({names}), got {cfg.reward_weights}")
    if cfg.logprobs_over_allowed and (not cfg.constrained or cfg.forced_tokens_in_loss):
        raise ValueError("grpo.logprobs_over_allowed scores constrained samples: it needs grpo.constrained: true and "
                         "grpo.forced_tokens_in_loss: false")
    if cfg.logprobs_over_allowed and (cfg.num_iterations > 1 or cfg.beta):
        # trl scores the sampling policy (num_iterations > 1) and the reference model (beta) without the schema
        raise ValueError("grpo.logprobs_over_allowed works with one update per sample and no KL term (beta 0)")
    torch.manual_seed(cfg.seed)
    model, processor = load_for_training(cfg, padding_side="left")
    on_gpu = torch.cuda.is_available()
    args = GRPOConfig(
        output_dir=cfg.checkpoint_dir or cfg.output_dir, max_steps=cfg.max_steps, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.per_device_train_batch_size, num_generations=cfg.num_generations,
        # a constrained answer always fits the schema's token bound: never cut it (chimera/vlm/constrained.py)
        max_completion_length=max(cfg.max_completion_length, decoding_token_bound()) if cfg.constrained
        else cfg.max_completion_length, temperature=cfg.temperature, beta=cfg.beta,
        num_iterations=cfg.num_iterations,
        reward_weights=cfg.reward_weights, logging_steps=cfg.logging_steps, seed=cfg.seed, bf16=on_gpu,
        use_cpu=not on_gpu, gradient_checkpointing=cfg.gradient_checkpointing, report_to="none", save_strategy="steps",
        save_steps=cfg.save_steps, save_total_limit=2,
        dataloader_num_workers=0)
    peft_model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                                  target_modules=cfg.target_modules, modules_to_save=cfg.modules_to_save,
                                                  task_type="CAUSAL_LM"))
    reward_log = RewardLog(Path(cfg.checkpoint_dir or cfg.output_dir) / "reward_log.jsonl")
    trainer = GRPOTrainer(model=peft_model, reward_funcs=[reward_log.wrap(fn) for fn in REWARDS], args=args,
                          train_dataset=dataset,
                          processing_class=processor,
                          callbacks=[*dvclive_callbacks(cfg.dvclive_dir), *callbacks])
    if cfg.constrained:
        forced = None if cfg.forced_tokens_in_loss else []
        constrain_generation(trainer.model, processor.tokenizer, forced, keep_allowed=cfg.logprobs_over_allowed)
        if forced is not None:
            leave_forced_tokens_out_of_the_loss(trainer, forced)
        if cfg.logprobs_over_allowed:
            score_over_allowed(trainer, forced)
    return trainer, reward_log


def train_grpo(cfg: GRPORunConfig, dataset, callbacks=(), resume: bool | None = None) -> dict:
    trainer, reward_log = build_grpo_trainer(cfg, dataset, callbacks)
    processor = trainer.processing_class
    start = time.perf_counter()
    checkpoint = resume_point(cfg, resume)
    reward_log.keep_before(int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint else 0)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - start
    history = trainer.state.log_history
    rewards = {fn.__name__: [h[f"rewards/{fn.__name__}/mean"] for h in history if f"rewards/{fn.__name__}/mean" in h]
               for fn in REWARDS}
    final = Path(cfg.output_dir) / "final_model"
    trainer.model.save_pretrained(final / "adapter")
    log_rows = reward_log.rows()
    kept_log = Path(cfg.output_dir) / "reward_log.jsonl"  # the run's own record, beside its model
    if reward_log.path != kept_log:
        shutil.copyfile(reward_log.path, kept_log)  # keep_before wrote it before training
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    if cfg.merge:
        merge_and_save(trainer.model, processor, final / "merged_16bit")
    finish_checkpoints(cfg)
    summary = {"steps": trainer.state.global_step, "train_seconds": round(seconds, 2),
               "seconds_per_step": round(seconds / max(1, trainer.state.global_step), 3),
               "peak_memory_mb": round(peak_memory_mb(), 1),
               "trainable_params": trainable, "resumed_from_step": int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint else 0,
               "reward_means": {k: (sum(v) / len(v) if v else None) for k, v in rewards.items()},
               "reward_first_last": {k: (v[0], v[-1]) if v else None for k, v in rewards.items()},
               "reward_per_step": [round(h["reward"], 4) for h in history if "reward" in h],
               "free_token_fraction": _mean([h["completions/free_token_fraction"] for h in history
                                             if "completions/free_token_fraction" in h]),
               "reward_windows": reward_windows(history),
               "reward_paired": paired_reward_change(log_rows, cfg.reward_weights),
               "config": asdict(cfg)}
    (Path(cfg.output_dir) / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return summary
