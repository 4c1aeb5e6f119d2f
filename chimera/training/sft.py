"""Supervised fine-tuning with trl + peft LoRA: screenshots -> JSON (visual SFT) and state text -> analysis
(strategy pretraining, language backbone only). The same code trains the tiny model on CPU and
Qwen3-VL-8B on a GPU.

Known traps (../shared/notes/tiny-qwen3vl.md): pass the processor yourself (trl would call AutoProcessor,
which needs torchvision); bf16 is ~4.5x slower on CPU; a random model's frozen lm_head caps what LoRA can
learn, so the tiny preset also trains lm_head (`modules_to_save`).
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from chimera.prompts import SYSTEM_PROMPT, USER_PROMPT
from chimera.schema import Analysis, to_json

# LoRA on the language model only: the vision tower and merger stay frozen and untouched
LANGUAGE_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass
class SFTRunConfig:
    base_model: str
    output_dir: str
    max_steps: int = 60
    learning_rate: float = 2e-4
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str | list[str] = LANGUAGE_LORA_TARGETS
    modules_to_save: list[str] | None = None
    gradient_checkpointing: bool = False
    max_pixels: int = 448 * 252
    min_pixels: int = 65536
    quantization: str | None = None
    logging_steps: int = 5
    save_steps: int = 50
    save_total_limit: int = 2
    seed: int = 0
    dvclive_dir: str | None = None
    merge: bool = True
    eval_steps: int = 25                      # eval loss on the val set every this many steps (when one is given)
    checkpoint_dir: str | None = None         # checkpoints here (outside DVC's output) until the run finishes
    early_stopping_patience: int | None = None  # stop after this many evals without a better val loss
    shared_prefix: bool = True                # the batch's common system text computed once (same loss, ~2x faster)

    def to_json(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# Datasets (conversational prompt/completion, as trl expects)
# --------------------------------------------------------------------------------------------------

def screen_dataset(examples: list[tuple[str, dict]], view=None):
    """(image path, label Analysis JSON) -> prompt/completion/images, each frame shown as the base model's `view`
    (chimera/vlm/views.py; default: the whole frame); trl picks its vision collator. An image that cannot be read
    is reported and left out."""
    from datasets import Dataset

    from chimera.io import readable_images
    from chimera.vlm.views import WHOLE_FRAME

    view = view or WHOLE_FRAME
    rows = {"prompt": [], "completion": [], "images": []}
    for (path, analysis), image in readable_images(examples, path_of=lambda e: e[0]):
        rows["prompt"].append([
            {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
            {"role": "user", "content": [{"type": "image"}] * view.n_images + [{"type": "text", "text": USER_PROMPT}]}])
        # the schema's field order (game_state first: read the HUD, then reason), never the stored key order
        rows["completion"].append([{"role": "assistant", "content": [
            {"type": "text", "text": to_json(Analysis.model_validate(analysis))}]}])
        rows["images"].append(view.images(image))
    return Dataset.from_dict(rows)


def answer_dataset(processor, examples: list[tuple[str, str, str]], system_prompt: str):
    """(user text, game_state JSON, the answer's rest as a JSON object) -> text prompt/completion, no image, in the
    screenshot answer's own format: the prompt ends inside the answer, after `{"game_state":{...},`, and the
    completion is what follows (analysis, advice, ...). Trained this way, text learns what to write after a
    game_state, which is where the model writes its analysis when it answers for a screenshot; the user text carries
    whatever else the targets depend on (the strategy data's prose: score, round, time)."""
    from datasets import Dataset

    prompts, completions = [], []
    for user_text, game_state, rest in examples:
        if not (rest.startswith("{") and rest.endswith("}")):
            raise ValueError(f"answer_dataset: the answer's rest must be one JSON object, got {rest[:60]!r}")
        head = processor.apply_chat_template(
            [{"role": "system", "content": [{"type": "text", "text": system_prompt}]},
             {"role": "user", "content": [{"type": "text", "text": user_text}]}], tokenize=False,
            add_generation_prompt=True)
        prompts.append(head + '{"game_state":' + game_state + ",")
        completions.append(rest[1:])
    return Dataset.from_dict({"prompt": prompts, "completion": completions})


def with_images(text, image_rows: list[tuple[str, str, list]]):
    """A text dataset of prompt/completion strings (answer_dataset) joined by rows that show images, (prompt,
    completion, images) in the same format: trl's vision collator takes batches of both (a text row's image list is
    empty), so a text pretraining can rehearse the base's reading in its own steps. `length` puts every image row
    after every text row, so the trainer's length-grouped sampler (make_trainer) batches like with like: a text batch
    is not padded to an image row's long prompt, and an image batch shares its prompt's prefix (shared_prefix_trainer)."""
    from datasets import Dataset

    texts = [len(prompt) + len(completion) for prompt, completion in zip(text["prompt"], text["completion"])]
    longest = max(texts, default=0)
    return Dataset.from_dict({"prompt": list(text["prompt"]) + [prompt for prompt, _, _ in image_rows],
                              "completion": list(text["completion"]) + [answer for _, answer, _ in image_rows],
                              "images": [[] for _ in range(len(text))] + [images for _, _, images in image_rows],
                              "length": texts + [longest + len(prompt) + len(answer) for prompt, answer, _ in image_rows]})


# --------------------------------------------------------------------------------------------------
# Model + LoRA + trainer
# --------------------------------------------------------------------------------------------------

def lora_config(cfg: SFTRunConfig):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules, modules_to_save=cfg.modules_to_save, task_type="CAUSAL_LM")


def load_for_training(cfg, padding_side: str = "right"):
    """Model + processor for a trainer config (SFT or GRPO: both have these fields); 4-bit gets k-bit prep."""
    from chimera.vlm.models import ModelConfig, load_model

    model, processor = load_model(ModelConfig(name=cfg.base_model, quantization=cfg.quantization,
                                              max_pixels=cfg.max_pixels, min_pixels=cfg.min_pixels), for_training=True)
    processor.tokenizer.padding_side = padding_side  # SFT pads on the right; GRPO generates, so on the left
    if cfg.quantization == "4bit":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    return model, processor


def make_trainer(cfg: SFTRunConfig, model, processor, dataset, max_steps: int | None = None, callbacks=(),
                 eval_dataset=None):
    from peft import get_peft_model
    from transformers import EarlyStoppingCallback
    from trl import SFTConfig, SFTTrainer

    on_gpu = torch.cuda.is_available()
    evaluating = eval_dataset is not None and len(eval_dataset) > 0
    early = evaluating and cfg.early_stopping_patience
    eval_args = dict(eval_strategy="steps", eval_steps=cfg.eval_steps, per_device_eval_batch_size=cfg.per_device_train_batch_size,
                     load_best_model_at_end=bool(early), metric_for_best_model="eval_loss", greater_is_better=False,
                     save_strategy="steps") if evaluating else {}
    args = SFTConfig(
        output_dir=cfg.checkpoint_dir or cfg.output_dir, max_steps=max_steps or cfg.max_steps, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, logging_steps=cfg.logging_steps,
        save_steps=cfg.eval_steps if early else cfg.save_steps,  # load_best_model_at_end saves on the eval grid
        save_total_limit=cfg.save_total_limit, seed=cfg.seed, data_seed=cfg.seed,
        bf16=on_gpu, use_cpu=not on_gpu, gradient_checkpointing=cfg.gradient_checkpointing,
        max_length=None,  # never cut image tokens
        report_to="none", lr_scheduler_type="cosine", warmup_steps=min(5, (max_steps or cfg.max_steps) // 10),
        dataloader_num_workers=0, remove_unused_columns=False if "images" in dataset.column_names else True,
        # with_images' rows carry a `length`: batches of like rows (text with text, frames with frames)
        **({"train_sampling_strategy": "group_by_length"} if "length" in dataset.column_names else {}),
        disable_tqdm=False, **eval_args)
    if early:
        callbacks = [*callbacks, EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)]
    peft_model = model if hasattr(model, "peft_config") else get_peft_model(model, lora_config(cfg))
    trainer_class = shared_prefix_trainer(SFTTrainer) if cfg.shared_prefix else SFTTrainer
    return trainer_class(model=peft_model, args=args, train_dataset=dataset, eval_dataset=eval_dataset if evaluating else None,
                      processing_class=processor, callbacks=list(callbacks))


# a common prefix shorter than this is not worth a second forward (a text-only batch shares only a few tokens)
MIN_SHARED_PREFIX = 64


def shared_prefix_trainer(trainer_class):
    """`trainer_class` whose training loss runs the batch's common prefix once: every screenshot row starts with the
    research prompt's system text (about 800 of 1,150 tokens on the tiny model), so its keys and values are computed
    at batch 1 and repeated (chimera.training.prefix: same loss and gradients, tested). The
    batches of trl's vision collator are flushed left, so the rows' text starts together. Evaluation, and any batch
    without images or without a long common prefix, takes trl's own path."""
    from chimera.training.prefix import shared_prefix_length, shared_prefix_loss

    class SharedPrefixTrainer(trainer_class):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            prefix = (shared_prefix_length(inputs) if model.training and not return_outputs
                      and "image_grid_thw" in inputs and inputs["input_ids"].shape[0] > 1 else 0)
            if prefix < MIN_SHARED_PREFIX:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            base = model.get_base_model() if hasattr(model, "get_base_model") else model  # LoRA layers live in it
            return shared_prefix_loss(base, inputs, prefix)

    return SharedPrefixTrainer


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def dvclive_callbacks(path: str | None) -> list:
    if not path:
        return []
    from dvclive import Live
    from transformers.integrations import DVCLiveCallback

    return [DVCLiveCallback(live=Live(dir=path, save_dvc_exp=False, dvcyaml=None), log_model=None)]


# config fields that do not change the weights a run produces: a rerun differing only in these may resume
NOT_THE_TRAJECTORY = {"max_steps", "merge", "dvclive_dir", "logging_steps", "save_total_limit", "output_dir"}


def resume_point(cfg, resume: bool | None) -> Path | None:
    """The checkpoint to continue from. resume=None (auto) continues only a run of the same config (fields in
    NOT_THE_TRAJECTORY aside) found in cfg.checkpoint_dir, and clears one of another config; True takes the
    newest checkpoint there is."""
    folder = Path(cfg.checkpoint_dir or cfg.output_dir)
    checkpoints = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    if resume is None and not cfg.checkpoint_dir:
        return None  # no checkpoint folder of its own: resume only when asked
    if resume is None:
        stamp = folder / "run_config.json"
        same = {k: v for k, v in asdict(cfg).items() if k not in NOT_THE_TRAJECTORY}
        if stamp.exists() and json.loads(stamp.read_text()) != json.loads(json.dumps(same, default=str)):
            shutil.rmtree(folder)  # another run's checkpoints: never resumed into this one
            checkpoints = []
        folder.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(same, default=str))
        resume = True
    return checkpoints[-1] if resume and checkpoints else None


def finish_checkpoints(cfg) -> None:
    """The run is done: its checkpoints under checkpoint_dir have served their purpose."""
    if cfg.checkpoint_dir:
        shutil.rmtree(cfg.checkpoint_dir, ignore_errors=True)


def train(cfg: SFTRunConfig, dataset, resume: bool | None = None, callbacks=(), eval_dataset=None) -> dict:
    """Train, save the adapter (final_model/adapter) and a merged 16-bit model (final_model/merged_16bit).
    With `eval_dataset`, the val loss is logged every `eval_steps` and reported (first, last, best). A crashed
    run (same config) resumes from its last checkpoint (`resume_point`)."""
    torch.manual_seed(cfg.seed)
    model, processor = load_for_training(cfg)
    trainer = make_trainer(cfg, model, processor, dataset, callbacks=[*dvclive_callbacks(cfg.dvclive_dir), *callbacks],
                           eval_dataset=eval_dataset)
    start = time.perf_counter()
    checkpoint = resume_point(cfg, resume)
    resume_step = int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint else 0
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - start
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    if eval_dataset is not None and len(eval_dataset):
        trainer.evaluate()  # the final model's val loss, whatever the eval grid
    val = [log["eval_loss"] for log in trainer.state.log_history if "eval_loss" in log]
    final = Path(cfg.output_dir) / "final_model"
    trainer.model.save_pretrained(final / "adapter")
    processor.save_pretrained(final / "adapter")
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    if cfg.merge:
        merge_and_save(trainer.model, processor, final / "merged_16bit")
    finish_checkpoints(cfg)
    summary = {"steps": trainer.state.global_step, "train_seconds": round(seconds, 2),
               "seconds_per_step": round(seconds / max(1, trainer.state.global_step), 4),
               "first_loss": losses[0] if losses else None, "final_loss": losses[-1] if losses else None,
               "train_loss": result.training_loss, "peak_memory_mb": round(peak_memory_mb(), 1),
               "trainable_params": trainable, "examples": len(dataset), "resumed_from_step": resume_step, "config": cfg.to_json(),
               "val_examples": len(eval_dataset) if eval_dataset is not None else 0,
               "first_val_loss": val[0] if val else None, "final_val_loss": val[-1] if val else None,
               "best_val_loss": min(val) if val else None}
    (Path(cfg.output_dir) / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def evaluate_only(cfg: SFTRunConfig, eval_dataset) -> dict:
    """The val loss of cfg.base_model as it is, no step taken: the point a pretraining's val loss moves from. It is
    logged to cfg.dvclive_dir at step 0, so its curve is one point beside the trained runs'. The summary has
    train()'s loss keys (no training losses)."""
    torch.manual_seed(cfg.seed)
    model, processor = load_for_training(cfg)  # LoRA's B starts at zero: the adapted model is the base
    trainer = make_trainer(cfg, model, processor, eval_dataset, callbacks=dvclive_callbacks(cfg.dvclive_dir),
                           eval_dataset=eval_dataset)
    loss = trainer.evaluate()["eval_loss"]
    finish_checkpoints(cfg)  # the trainer made its folder; nothing was saved in it
    return {"steps": 0, "first_loss": None, "final_loss": None, "val_examples": len(eval_dataset),
            "first_val_loss": loss, "final_val_loss": loss, "best_val_loss": loss}


def merge_and_save(peft_model, processor, path: str | Path, dtype=torch.bfloat16) -> Path:
    """Fold the LoRA weights in and save a plain 16-bit model the next stage loads like any other. In place:
    no second copy of the weights (the adapter is saved first; the PEFT model is spent afterwards)."""
    from chimera.vlm.models import save_model_folder
    from chimera.vlm.views import load_view, save_view

    merged = peft_model.merge_and_unload()
    merged = merged.to(dtype)
    processor.tokenizer.padding_side = "left"  # the merged model is for generation
    out = save_model_folder(merged, processor, path)
    view = load_view(merged.name_or_path)  # a model shown HUD crops keeps being shown them
    if view.frame_size:
        save_view(view, out)
    return out


def dry_run(cfg: SFTRunConfig, dataset) -> dict:
    """Load, run one optimiser step, report peak memory and an estimate for the whole run.

    LoRA training memory does not grow with steps; it grows with sequence length (activations). The estimate
    scales the activation part of the one-step peak by the longest example over the step's longest.
    """
    base = peak_memory_mb()
    torch.manual_seed(cfg.seed)
    model, processor = load_for_training(cfg)
    loaded = peak_memory_mb()
    trainer = make_trainer(cfg, model, processor, dataset, max_steps=1)
    start = time.perf_counter()
    trainer.train()
    step_seconds = time.perf_counter() - start
    peak = peak_memory_mb()
    lengths = [len(processor.tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True))
               for row in dataset.select(range(min(len(dataset), 64))).remove_columns(
                   [c for c in dataset.column_names if c == "images"])]
    step_len = max(lengths[:cfg.per_device_train_batch_size])
    estimate = loaded + (peak - loaded) * max(lengths) / max(1, step_len)
    return {"device": "cuda" if torch.cuda.is_available() else "cpu",
            "memory_kind": "GPU max allocated" if torch.cuda.is_available() else "process peak RSS",
            "before_load_mb": round(base, 1), "after_load_mb": round(loaded, 1), "one_step_peak_mb": round(peak, 1),
            "estimated_full_run_mb": round(estimate, 1), "step_seconds": round(step_seconds, 3),
            "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
            "total_params": sum(p.numel() for p in trainer.model.parameters())}

