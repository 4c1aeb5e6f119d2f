"""Perception pretraining: the tiny Qwen3-VL learns to read the HUD before the experiment starts.

The real study starts from Qwen3-VL-8B, which already reads text in images; the embedded default's random tiny
model does not. This stage is its stand-in for that pretraining: synthetic frames rendered with exact truth
(seeds disjoint from the screenshot splits), targets that read the game_state and leave analysis and advice
unassessed (`schema.unassessed`: judging is left to the experiment), every weight trained. A plain torch loop
(nanoGPT-style) rather than trl: the whole model trains, each step encodes its batch from the stored view images, and
held-out accuracy is measured on the way.

Phases, each with its own warmup and cosine: reading phases on HUD crops alone, each crop's fields the whole target
(`reading`, 0.04 s a step), then the whole view and the full game_state. In the full task the digits are a small
share of the loss, and 1,800 steps of it read no money; 1,500 steps of the money crop alone read it on 77% of
held-out crops, and the base keeps it in the full task (89.6% at the end, BENCHMARKS.md). Health and armor read
from narrow crops of their own the same way (one phase each, then the three mixed, then from the whole view: 92% /
98%), but the full task after 6,500 reading steps learned the rest more slowly (61.7% overall against that day's
base, 68.4%), so the default keeps money alone (BENCHMARKS.md, "fifth round"). `value_weights` weighs chosen fields'
value tokens in the full task's loss instead (off by default).

One setting's runs end far apart: the default at seeds 1-3, or at seed 0 with the loss's float sums reordered, ended
2-17 points below that day's base, 68.4% (standard deviation 6.5 points over the five; BENCHMARKS.md, "sixth round").
The committed base, the same setting trained on another CPU, is 67.2% (BENCHMARKS.md, 2026-12-06). A comparison of
settings needs many seeds each; every earlier round compared one run per setting.

Measured levers (BENCHMARKS.md, "Perception pretraining"): the learning rate and its warmup (2e-3 collapses to the
label prior; 5e-4 learns, faster after a 300-step warmup), HUD-region crops as extra images (a whole 448x252 frame
leaves a digit a fraction of a patch) that follow the HUD scale (49% -> 57% held out: the portraits and inventory
land on the same crop pixels at every scale), and the number of steps, which sharing the research prompt's system
text across a batch (`shared_prefix_loss`) makes cheaper. Steps are what the full task lacked for health: three
times as many (5,400, view `vitals_apart`, `full_task_rare` on health) read armor and money past 90% at two seeds of
three and health at 92% / 81% / 85% (73.6% / 76.3% / 73.2% overall), for 24 more minutes on 2 cores (BENCHMARKS.md,
"ninth round").
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chimera.prompts import PERCEPTION_PROMPT, READING_PROMPT, SYSTEM_PROMPT, USER_PROMPT
from chimera.schema import GAME_STATE_FIELDS, GameState, to_json, unassessed
from chimera.training.prefix import causal_lm_loss, shared_prefix_length, shared_prefix_loss
from chimera.vlm.views import View

# The synthetic HUD's regions (chimera/screens/hud.py), sized so a glyph spans about a patch. Each crop holds its
# elements whole at every HUD scale the renderer samples (tests/test_perception.py measures it from the boxes)
# money and the two vitals are separate narrow crops: the same pixels in one 576x32 crop read money on 16% of
# held-out frames after 1,500 steps of money-only targets, the 160x32 money crop alone on 78% (BENCHMARKS.md)
HUD_VIEW = View(frame_size=(256, 160), crops={
    "money": ((0.0, 0.9333, 0.1354, 0.9815), (160, 32)),    # one row of visual tokens, as are the vitals
    "vitals": ((0.28, 0.9333, 0.4968, 0.9815), (256, 32)),  # armor and health (same pixels per frame width as money)
    "top": ((0.27, 0.0, 0.73, 0.095), (384, 64)),           # portraits (side, alive counts), timer or bomb, buy-time money
    "inventory": ((0.74, 0.45, 1.0, 0.95), (192, 224)),     # weapons, grenades, C4, kit
}, anchors={"money": (0.0, 1.0), "vitals": (0.0, 1.0), "top": (0.5, 0.0), "inventory": (1.0, 1.0)})  # each scales
# with the HUD about its corner
# the vitals apart: armor and health each in a narrow crop of its own, as money is. Read alone after a reading phase
# each (92% / 94%), but the base after those phases scored less than HUD_VIEW's (61.7% at best against that day's
# base, 68.4%)
VITALS_APART_VIEW = View(frame_size=(256, 160), crops={
    "money": HUD_VIEW.crops["money"],
    "armor": ((0.24, 0.9333, 0.3754, 0.9815), (160, 32)),   # each with its icon (the same pixels per frame width)
    "health": ((0.375, 0.9333, 0.5104, 0.9815), (160, 32)),
    "top": HUD_VIEW.crops["top"], "inventory": HUD_VIEW.crops["inventory"],
}, anchors={"money": (0.0, 1.0), "armor": (0.0, 1.0), "health": (0.0, 1.0), "top": (0.5, 0.0),
            "inventory": (1.0, 1.0)})
VIEWS = {"hud_crops": HUD_VIEW, "vitals_apart": VITALS_APART_VIEW,  # params.yaml perception.view
         "whole_frame": View(frame_size=(448, 256))}


@dataclass
class PerceptionConfig:
    base_model: str
    output_dir: str
    n_frames: int = 3000                # the training pool (rendered once per run)
    n_val: int = 64                     # held-out frames for the learning curve (and as many training frames)
    max_steps: int = 1500               # the full task, after the reading phases
    batch_size: int = 8
    learning_rate: float = 5e-4
    warmup_steps: int = 300             # one-number task, 600 steps at lr 5e-4: 69% after a 20-step warmup, 81% after 300
    eval_every: int = 250
    reading: list[dict] = field(default_factory=list)  # phases before the full task, each its own warmup and cosine:
    # {"steps": N, "tasks": {crop: [fields]}, "rare_share": r}: a task shows its crop alone with its fields as the whole
    # target, so the digits get every step's loss; a phase's tasks take turns within each batch, and a share r of each
    # task's frames comes from those off the mode of one of its fields (health below 100); the crop "view" is
    # every image of the view, as the full task shows them; "look": "classic" | "cs2" takes the phase's frames (and
    # the held-out frames it is read on at its end) from those drawn in that look alone (cs2_look_share between 0 and 1)
    reading_replay: int = 0             # the full task rehearses the reading: each of its steps adds the loss of this
    # many reading examples (every reading task in turn), against forgetting; measured, it made the base worse
    short_prompt_steps: int = 0         # a curriculum: the first N steps after it ask the short reading prompt...
    research_prompt_every: int = 2      # ...then every Nth step asks the research prompt (its shared system text runs once)
    value_weights: dict = field(default_factory=dict)  # {field: w}: in the full task, the tokens of that field's value
    # weigh w in the loss (every other token 1): the digits' share of the loss, without leaving the full task
    value_weights_steps: int = 0        # the weights hold for the full task's first N steps, then every token weighs 1
    # (0: throughout): a field first learned at a large share of the loss, then kept at an equal one
    full_task_rare: dict = field(default_factory=dict)  # {"fields": [...], "share": r}: in the full task a share r of
    # the frames comes from those off the mode of one of the fields (health below 100), so that the prior is no answer
    patch_embed_as_linear: bool = False  # the vision patch embedding run as a linear layer: 13% less time, other float
    # sums, so another draw of the base (ModelConfig.patch_embed_as_linear)
    cs2_look_share: float = 0.0        # a share of the pool drawn in the renderer's CS2 look (hud.render_frame's
    # `look`): CS2's colours and condensed digits, against the synthetic HUD's own (0: none, and no draw for it)
    max_new_tokens: int = 200
    seed: int = 0
    view: dict = field(default_factory=HUD_VIEW.to_json)
    backgrounds: list[str] = field(default_factory=list)
    screenshots_dir: str | None = None
    dvclive_dir: str | None = None
    checkpoint_dir: str | None = None   # a crashed run of the same config resumes from here (.cache/checkpoints)
    save_every: int = 100               # steps between checkpoints
    workers: int = 2                    # render processes

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def total_steps(self) -> int:
        return sum(phase["steps"] for phase in self.reading) + self.max_steps


WHOLE_VIEW = "view"  # a reading task on every image of the view rather than one crop


def stage_config(p: dict, tiny_path: str, seed: int, backgrounds: list[str], screenshots_dir: str,
                 **overrides) -> PerceptionConfig:
    """The stage's run as params.yaml sets it: `p` its perception section, then the tiny model's folder, the top-level
    seed and the synthetic frames' backgrounds and screenshots; `overrides` replace fields (bench/perception_seeds.py
    runs it at other seeds)."""
    cfg = PerceptionConfig(
        base_model=tiny_path, output_dir=str(p["out"]), n_frames=p["n_frames"], n_val=p["n_val"],
        max_steps=p["max_steps"], batch_size=p["batch_size"], learning_rate=p["learning_rate"],
        warmup_steps=p["warmup_steps"], eval_every=p["eval_every"], seed=seed,
        short_prompt_steps=p["short_prompt_steps"], research_prompt_every=p["research_prompt_every"],
        reading=p["reading"], reading_replay=p["reading_replay"], value_weights=p["value_weights"],
        value_weights_steps=p["value_weights_steps"],
        full_task_rare=p["full_task_rare"], patch_embed_as_linear=p["patch_embed_as_linear"],
        cs2_look_share=p["cs2_look_share"],
        view=VIEWS[p["view"]].to_json(), backgrounds=backgrounds, screenshots_dir=screenshots_dir)
    return replace(cfg, **overrides)  # a misspelt override is a TypeError, not a silent new attribute


def redirect_to_pretrained(model_name: str, out: str | Path) -> str | None:
    """The 8B path: `model_name` (a hub id or a model folder) is a pretrained VLM that already reads, so the stage
    trains nothing and `out` becomes a redirect to it (chimera.vlm.models.ensure_local follows it). Returns why,
    or None for the tiny model, which must be trained."""
    from chimera.vlm.models import TINY, redirect

    if model_name == TINY:
        return None
    why = f"{model_name} is a pretrained VLM that already reads the HUD: perception pretraining is for the tiny model"
    redirect(model_name, out, why)
    return why


def perception_target(state: GameState) -> str:
    """The answer the base learns: the full Analysis object in the schema's order (to_json), with the game_state read
    from the HUD and analysis and advice unassessed: reading is taught, judging is left to the experiment."""
    return to_json(unassessed(state))


def reading_target(state: GameState, fields: list[str]) -> str:
    """A reading phase's answer: those fields of the game_state alone, serialised as the full target serialises them
    (compact JSON, the schema's key order), so the digits come out in the same surroundings in every phase."""
    values = state.model_dump(mode="json")
    return json.dumps({"game_state": {name: values[name] for name in GAME_STATE_FIELDS if name in fields}},
                      separators=(",", ":"))


def rehearsal_rows(processor, rows: list[tuple[list[Image.Image], GameState]], research: bool = False
                   ) -> list[tuple[str, str, list]]:
    """The base's reading as rows for another trainer (trl's standard prompt/completion/images): each frame's view
    under the short reading prompt, answered with its whole game_state (`reading_target`), or (research=True) under
    the research prompt, answered as the base was taught (`perception_target`). A text pretraining mixes them into
    its batches so that learning the text does not wear the reading away (bench/explore_strategy_reading.py)."""
    return [(processor.apply_chat_template(perception_messages(len(images), research), add_generation_prompt=True,
                                           tokenize=False),
             perception_target(state) if research else reading_target(state, list(GAME_STATE_FIELDS)), images)
            for images, state in rows]


def perception_messages(n_images: int, research: bool = False, reading: bool = False) -> list[dict]:
    """The short reading prompt, (research=True) the research prompt every model of the experiment is asked, or
    (reading=True) the reading phases' prompt for a HUD crop alone (or the view, its fields alone)."""
    if research:
        return [{"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
                {"role": "user", "content": [{"type": "image"}] * n_images + [{"type": "text", "text": USER_PROMPT}]}]
    text = READING_PROMPT if reading else PERCEPTION_PROMPT
    return [{"role": "user", "content": [{"type": "image"}] * n_images + [{"type": "text", "text": text}]}]


# --------------------------------------------------------------------------------------------------
# Data: a pool of rendered frames, kept as view images (a few hundred kB each, not the 1080p frame)
# --------------------------------------------------------------------------------------------------

def pool_rng(seed: int, index: int) -> random.Random:
    """Seeds of the perception pool: a string namespace, so never one of render_synthetic's integer seeds."""
    return random.Random(f"perception:{seed}:{index}")


def frame_look(seed: int, index: int, cs2_look_share: float) -> str:
    """The renderer's look of the pool's frame `index`: its own random stream, so a share of 0 changes no frame."""
    look_rng = random.Random(f"perception-look:{seed}:{index}")
    return "cs2" if cs2_look_share and look_rng.random() < cs2_look_share else "classic"


def _render_one(args) -> tuple[list[Image.Image], dict]:
    from chimera.screens.hud import render_frame, sample_state, sample_style

    seed, index, backgrounds, screenshots_dir, view_json, cs2_look_share = args
    rng = pool_rng(seed, index)
    state, extras = sample_state(rng)
    style = sample_style(rng, backgrounds)
    frame, _ = render_frame(state, extras, style, Path(screenshots_dir) if screenshots_dir else None,
                            look=frame_look(seed, index, cs2_look_share))
    return View.from_json(view_json).images(frame), state.model_dump(mode="json")


def most_common(rows: list[tuple[list[Image.Image], GameState]], name: str) -> tuple[str, int]:
    """A field's most common value over `rows` (as JSON) and how many rows hold it."""
    return Counter(json.dumps(getattr(state, name)) for _, state in rows).most_common(1)[0]


def off_mode(pool: list[tuple[list[Image.Image], GameState]], fields: list[str]) -> list[int]:
    """The frames whose value of one of `fields` is not that field's most common value in the pool (health below 100,
    armor other than 100): the rare values a reading task oversamples."""
    modes = [most_common(pool, name)[0] for name in fields]
    return [i for i, (_, state) in enumerate(pool) if [json.dumps(getattr(state, name)) for name in fields] != modes]


def held_out_prior(rows: list[tuple[list[Image.Image], GameState]], fields: list[str]) -> dict[str, float]:
    """The share of `rows` at each field's most common value: what always answering that value reads, the trivial
    baseline beside a reading figure (health is 100 on about 70% of frames)."""
    return {name: most_common(rows, name)[1] / len(rows) for name in fields}


def render_pool(cfg: PerceptionConfig, start: int, n: int, progress=None) -> list[tuple[list[Image.Image], GameState]]:
    jobs = [(cfg.seed, i, cfg.backgrounds, cfg.screenshots_dir, cfg.view, cfg.cs2_look_share)
            for i in range(start, start + n)]
    out = []
    if cfg.workers > 1 and n > 8:
        with ProcessPoolExecutor(cfg.workers) as pool:
            for images, state in pool.map(_render_one, jobs, chunksize=16):
                out.append((images, GameState.model_validate(state)))
                if progress:
                    progress(1)
    else:
        for job in jobs:
            images, state = _render_one(job)
            out.append((images, GameState.model_validate(state)))
            if progress:
                progress(1)
    return out


# --------------------------------------------------------------------------------------------------
# Encoding: prompt tokens masked, answer tokens learned
# --------------------------------------------------------------------------------------------------

def value_spans(answer: str, fields) -> dict[str, tuple[int, int]]:
    """Where each game_state field's value lies in a target (character offsets; a string without its quotes): the
    first `"field":` of the answer is the game_state's, which the schema's order puts first."""
    decoder, spans = json.JSONDecoder(), {}
    for name in fields:
        start = answer.index(f'"{name}":') + len(name) + 3
        value, end = decoder.raw_decode(answer, start)
        spans[name] = (start + 1, end - 1) if isinstance(value, str) else (start, end)
    return spans


def encode(processor, images: list[Image.Image], answer: str, research: bool = False, reading: bool = False,
           value_weights: dict | None = None) -> dict:
    """One example: the prompt's tokens masked, the answer's learned; with `value_weights` ({field: w}) also a weight
    per token, w on every token that overlaps that field's value and 1 elsewhere."""
    prompt = processor.apply_chat_template(perception_messages(len(images), research, reading),
                                           add_generation_prompt=True, tokenize=False)
    enc = processor(text=[prompt], images=images, return_tensors="pt")
    tok = processor.tokenizer
    answer_enc = tok(answer + tok.eos_token, add_special_tokens=False, return_offsets_mapping=bool(value_weights))
    answer_ids = torch.tensor(answer_enc["input_ids"])
    prompt_ids = enc["input_ids"][0]
    item = {"input_ids": torch.cat([prompt_ids, answer_ids]),
            "labels": torch.cat([torch.full_like(prompt_ids, -100), answer_ids]),
            "mm_token_type_ids": torch.cat([enc["mm_token_type_ids"][0], torch.zeros_like(answer_ids)]),
            "pixel_values": enc["pixel_values"], "image_grid_thw": enc["image_grid_thw"]}
    if value_weights:
        weights = torch.ones(len(answer_ids))
        for name, (start, end) in value_spans(answer, value_weights).items():
            for i, (a, b) in enumerate(answer_enc["offset_mapping"]):
                if a < end and b > start:
                    weights[i] = value_weights[name]
        item["weights"] = torch.cat([torch.zeros(len(prompt_ids)), weights])
    return item


def collate(items: list[dict], pad_id: int) -> dict:
    length = max(len(i["input_ids"]) for i in items)
    batch = {"input_ids": torch.full((len(items), length), pad_id), "labels": torch.full((len(items), length), -100),
             "attention_mask": torch.zeros((len(items), length), dtype=torch.long),
             "mm_token_type_ids": torch.zeros((len(items), length), dtype=torch.long)}
    weighted = "weights" in items[0]
    if weighted:
        batch["weights"] = torch.zeros((len(items), length))
    for row, item in enumerate(items):  # right padding: the loss never sees a pad
        n = len(item["input_ids"])
        for key in ("input_ids", "labels", "mm_token_type_ids") + (("weights",) if weighted else ()):
            batch[key][row, :n] = item[key]
        batch["attention_mask"][row, :n] = 1
    batch["pixel_values"] = torch.cat([i["pixel_values"] for i in items])
    batch["image_grid_thw"] = torch.cat([i["image_grid_thw"] for i in items])
    return batch


# --------------------------------------------------------------------------------------------------
# Held-out reading accuracy: the evaluation's own scoring (score_frame, value accuracy)
# --------------------------------------------------------------------------------------------------

def greedy_answers(model, processor, image_rows: list[list[Image.Image]], max_new_tokens: int = 160,
                   batch_size: int = 8, research: bool = True, reading: bool = False) -> list[str]:
    """The model's greedy answer to each row of images, asked as the training asks (perception_messages); the model
    is back in training mode after."""
    model.eval()
    texts, tok = [], processor.tokenizer
    for start in range(0, len(image_rows), batch_size):
        chunk = image_rows[start:start + batch_size]
        prompts = [processor.apply_chat_template(perception_messages(len(images), research, reading),
                                                 add_generation_prompt=True, tokenize=False) for images in chunk]
        inputs = processor(text=prompts, images=[im for images in chunk for im in images], return_tensors="pt",
                           padding=True, padding_side="left")
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        texts += tok.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    model.train()
    return texts


def read_accuracy(model, processor, rows, max_new_tokens: int = 160, batch_size: int = 8, research: bool = True,
                  reading: bool = False) -> dict:
    """Greedy answers on `rows`, asked the research prompt (what A faces) -> value accuracy overall and per field,
    and the schema-valid rate (unconstrained). With reading=True (rows of the reading crops, the first phase's
    prompt) the answer holds a few fields: only "fields" means anything then, for the fields the answer has."""
    from chimera.evaluation.metrics import DEFAULT_TOLERANCES, LABELLED, field_hit, frame_value_accuracy, score_frame
    from chimera.schema import parse_model_output

    accuracies, valid, per_field = [], 0, {name: [] for name in GAME_STATE_FIELDS}
    texts = greedy_answers(model, processor, [images for images, _ in rows], max_new_tokens, batch_size, research,
                           reading)
    for text, (_, state) in zip(texts, rows):
        valid += parse_model_output(text).schema_valid  # the evaluation's schema compliance
        label = {"analysis": {"game_state": state.model_dump(mode="json")}}
        score = score_frame("", {"analysis": None, "raw_text": text}, label, DEFAULT_TOLERANCES)
        accuracies.append(frame_value_accuracy(score))
        for name, result in score.outcomes.items():
            if result in LABELLED:
                per_field[name].append(float(field_hit(score, name)))
    return {"value_accuracy": float(np.nanmean(accuracies)), "schema_valid": valid / max(1, len(rows)),
            "fields": {k: float(np.mean(v)) for k, v in per_field.items() if v}}


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------

# fields that do not change the trajectory: a checkpoint of a run that differs only in these is resumed
NOT_THE_TRAJECTORY = {"output_dir", "dvclive_dir", "checkpoint_dir", "save_every", "workers", "eval_every",
                      "max_new_tokens"}


def checkpoint_path(cfg: PerceptionConfig) -> Path | None:
    if not cfg.checkpoint_dir:
        return None
    import hashlib

    trajectory = {k: v for k, v in cfg.to_json().items() if k not in NOT_THE_TRAJECTORY}
    key = hashlib.sha256(json.dumps(trajectory, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cfg.checkpoint_dir) / key / "state.pt"


def train(cfg: PerceptionConfig, progress=print, on_step=None) -> dict:
    """Train, evaluating on the way; checkpoints every `save_every` steps, and a rerun of the same config after a
    crash continues from the last one with the same trajectory (the data order and every RNG are restored)."""
    from chimera.vlm.models import load_model, ModelConfig, save_model_folder
    from chimera.vlm.views import fit_processor, save_view

    torch.manual_seed(cfg.seed)
    view = View.from_json(cfg.view)
    shown = {*view.crops, WHOLE_VIEW}
    missing = sorted({name for phase in cfg.reading for name in phase["tasks"] if name not in shown})
    if missing:
        raise ValueError(f"perception.reading: the view has no crop {missing} (its crops: {list(view.crops)}); "
                         "a view without crops takes no reading phases")
    named = [name for phase in cfg.reading for fields in phase["tasks"].values() for name in fields]
    if not 0.0 <= cfg.cs2_look_share <= 1.0:
        raise ValueError(f"perception.cs2_look_share is a share of the pool, from 0 to 1, not {cfg.cs2_look_share}")
    looks = [frame_look(cfg.seed, i, cfg.cs2_look_share) for i in range(cfg.n_frames + cfg.n_val)]
    for phase in cfg.reading:
        if "look" in phase and phase["look"] not in set(looks[:cfg.n_frames]) & set(looks[cfg.n_frames:]):
            raise ValueError(f"perception.reading: a phase's look {phase['look']!r} is not drawn in both the pool and "
                             f"the held-out frames (cs2_look_share {cfg.cs2_look_share}: the pool's looks "
                             f"{sorted(set(looks[:cfg.n_frames]))}, the held-out's {sorted(set(looks[cfg.n_frames:]))})")
    if set(cfg.full_task_rare) - {"fields", "share"}:  # a misspelt key would leave the full task as it was
        raise ValueError(f"perception.full_task_rare takes fields and share, not {sorted(cfg.full_task_rare)}")
    rare_fields = cfg.full_task_rare.get("fields", [])
    unknown = sorted({name for name in [*named, *cfg.value_weights, *rare_fields] if name not in GAME_STATE_FIELDS})
    if unknown:  # a reading target or a value weight would silently leave them out
        raise ValueError(f"perception.reading / value_weights / full_task_rare: no game_state field {unknown} "
                         f"(the fields: {list(GAME_STATE_FIELDS)})")
    model, processor = load_model(ModelConfig(name=cfg.base_model, patch_embed_as_linear=cfg.patch_embed_as_linear),
                                  device="cpu", for_training=True)
    fit_processor(processor, view)
    t0 = time.perf_counter()
    pool = render_pool(cfg, 0, cfg.n_frames)
    held_out = render_pool(cfg, cfg.n_frames, cfg.n_val)
    render_s = time.perf_counter() - t0
    progress(f"rendered {len(pool)} training and {len(held_out)} held-out frames in {render_s:.0f} s")
    targets = [perception_target(state) for _, state in pool]
    order, curve, rng, first_loss, start, reading_phases = [], [], random.Random(cfg.seed), None, 1, []
    image_index = {name: [1 + i] for i, name in enumerate(view.crops)}  # a crop's place among the view's images
    image_index[WHOLE_VIEW] = list(range(view.n_images))  # ([0]: the frame): "view" is every image
    in_look = [[i for i in range(cfg.n_frames) if looks[i] == phase["look"]] if "look" in phase else []
               for phase in cfg.reading]  # per reading phase, the frames it takes (all when empty)
    tasks = [[(crop, fields, [i for i in off_mode(pool, fields) if not frames or looks[i] == phase["look"]]
               if phase.get("rare_share") else [], phase.get("rare_share", 0.0), frames)
              for crop, fields in phase["tasks"].items()] for phase, frames in zip(cfg.reading, in_look)]
    rehearsed = [task for phase in tasks for task in phase]  # what the full task's steps rehearse (reading_replay)
    full_rare_share = cfg.full_task_rare.get("share", 0.0) if rare_fields else 0.0
    full_rare_frames = off_mode(pool, rare_fields) if full_rare_share else []
    lengths = [phase["steps"] for phase in cfg.reading] + [cfg.max_steps]  # the reading phases, then the full task
    ends = list(itertools.accumulate(lengths))  # phase k covers steps ends[k-1]+1 .. ends[k]
    reading_steps, total_steps = cfg.total_steps - cfg.max_steps, cfg.total_steps

    def reading_example(task, frame: int) -> dict:
        """The task's crop of the frame alone, its fields the whole target; a share of the frames is drawn instead
        from those off the mode of one of its fields (rare_share); a phase with a look maps the frame onto its own."""
        crop, fields, rare_frames, rare_share, look_frames = task
        if look_frames:  # no draw: the data order stays
            frame = look_frames[frame % len(look_frames)]
        if rare_share and rare_frames and rng.random() < rare_share:  # no draw without a share: the data order stays
            frame = rng.choice(rare_frames)
        return encode(processor, [pool[frame][0][k] for k in image_index[crop]], reading_target(pool[frame][1], fields),
                      reading=True)

    def phase_of(step: int) -> int:
        return bisect.bisect_left(ends, step)

    def warmup_cosine(s: int) -> float:  # one per phase: each phase starts again from a warmup at the full rate
        k = min(phase_of(s + 1), len(lengths) - 1)  # the scheduler's last call comes after the last step
        s, length = s - (ends[k] - lengths[k]), lengths[k]
        return min(1.0, (s + 1) / cfg.warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(s, length) / length))

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine)
    saved = checkpoint_path(cfg)
    if saved and saved.is_file():
        state = torch.load(saved, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        order, curve, first_loss, start = state["order"], state["curve"], state["first_loss"], state["step"] + 1
        reading_phases = state["reading_phases"]
        progress(f"resumed from the checkpoint at step {state['step']} ({saved})")
    live = _live(cfg, start)
    model.train()
    t0 = time.perf_counter()
    for step in range(start, total_steps + 1):
        if len(order) < cfg.batch_size:  # epochs over the pool, reshuffled
            order += rng.sample(range(len(pool)), len(pool))
        batch_ids, order = order[:cfg.batch_size], order[cfg.batch_size:]
        phase = phase_of(step)
        reading = step <= reading_steps
        research = (not reading and step - reading_steps > cfg.short_prompt_steps and cfg.research_prompt_every > 0
                    and step % cfg.research_prompt_every == 0)
        if reading:  # the phase's tasks in turn over its examples
            phase_tasks = tasks[phase]
            items = [reading_example(phase_tasks[((step - 1) * cfg.batch_size + row) % len(phase_tasks)], i)
                     for row, i in enumerate(batch_ids)]
        else:
            if full_rare_frames:  # none without a share, and then no draw: the data order stays
                batch_ids = [rng.choice(full_rare_frames) if rng.random() < full_rare_share else i for i in batch_ids]
            weighted = not cfg.value_weights_steps or step - reading_steps <= cfg.value_weights_steps
            items = [encode(processor, pool[i][0], targets[i], research,
                            value_weights=cfg.value_weights if weighted else None) for i in batch_ids]
        batch = collate(items, processor.tokenizer.pad_token_id)
        loss = shared_prefix_loss(model, batch, shared_prefix_length(batch)) if research else causal_lm_loss(model, batch)
        first_loss = loss.item() if step == 1 else first_loss
        if not reading and cfg.reading_replay and rehearsed:  # rehearsal: the crops alone again, every task in turn
            rows = [reading_example(rehearsed[((step - 1) * cfg.reading_replay + row) % len(rehearsed)],
                                    rng.randrange(len(pool))) for row in range(cfg.reading_replay)]
            (loss + model(**collate(rows, processor.tokenizer.pad_token_id)).loss).backward()
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if live:
            live.log_metric("perception/train/loss", loss.item(), plot=True)
        after_reading = step - reading_steps  # the curve counts from the end of the reading phases
        if (after_reading > 0 and after_reading % cfg.eval_every == 0) or step == total_steps:
            point = {"step": step, "loss": loss.item(), "seconds": round(time.perf_counter() - t0, 1),
                     "held_out": read_accuracy(model, processor, held_out, cfg.max_new_tokens),
                     "train": read_accuracy(model, processor, pool[:cfg.n_val], cfg.max_new_tokens),
                     # does it read at all? the same frames asked the short prompt, which needs no 800-token preamble
                     "held_out_short_prompt": read_accuracy(model, processor, held_out, cfg.max_new_tokens,
                                                            research=False)}
            curve.append(point)
            progress(f"step {step}: loss {point['loss']:.3f}, held-out value accuracy "
                     f"{point['held_out']['value_accuracy']:.1%} (train {point['train']['value_accuracy']:.1%}; short prompt "
                     f"{point['held_out_short_prompt']['value_accuracy']:.1%}), "
                     f"schema-valid {point['held_out']['schema_valid']:.0%}")
            if live:
                for split in ("held_out", "train", "held_out_short_prompt"):
                    live.log_metric(f"perception/{split}/value_accuracy", point[split]["value_accuracy"], plot=True)
                    live.log_metric(f"perception/{split}/schema_valid", point[split]["schema_valid"], plot=True)
                    for name, value in point[split]["fields"].items():
                        live.log_metric(f"perception/{split}/field/{name}", value, plot=True)
        if reading and step == ends[phase]:  # the end of a reading phase: does each crop alone read its fields?
            read, look = {}, cfg.reading[phase].get("look")
            shown = [row for row, row_look in zip(held_out, looks[cfg.n_frames:]) if look in (None, row_look)]
            for crop, fields, *_ in tasks[phase]:
                found = read_accuracy(model, processor, [([images[k] for k in image_index[crop]], state)
                                                         for images, state in shown],
                                      cfg.max_new_tokens, research=False, reading=True)["fields"]
                read.update({name: found.get(name, 0.0) for name in fields})
            reading_phases.append({"step": step, "loss": loss.item(), "tasks": cfg.reading[phase]["tasks"],
                                   "held_out": read, "prior": held_out_prior(shown, list(read)),
                                   **({"look": look, "n_held_out": len(shown)} if look else {})})
            prior = reading_phases[-1]["prior"]
            progress(f"step {step}, end of reading phase {phase + 1}: held out{f' ({look} look)' if look else ''}, "
                     "each task on its own images: "
                     + ", ".join(f"{name} {value:.0%} (most common value {prior[name]:.0%})"
                                 for name, value in read.items()))
            if live:
                for name, value in read.items():
                    live.log_metric(f"perception/held_out_reading/field/{name}", value, plot=True)
        if live:
            live.next_step()
        if saved and step % cfg.save_every == 0 and step < total_steps:
            saved.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
                        "order": order, "curve": curve, "first_loss": first_loss, "step": step,
                        "reading_phases": reading_phases}, saved.with_suffix(".tmp"))
            saved.with_suffix(".tmp").replace(saved)  # atomic: a crash while saving keeps the previous checkpoint
        if on_step:
            on_step(1)
    train_s = time.perf_counter() - t0
    model.eval()
    out = save_model_folder(model, processor, cfg.output_dir)
    save_view(view, out)
    if saved:
        import shutil

        shutil.rmtree(saved.parent, ignore_errors=True)  # finished: the model folder holds the work now
    if live:
        live.end()
    final = curve[-1]
    return {"steps": total_steps, "frames": cfg.n_frames, "n_held_out": cfg.n_val, "first_loss": first_loss,
            "final_loss": final["loss"], "resumed_from_step": start - 1, "render_seconds": round(render_s, 1),
            "train_seconds": round(train_s, 1), "parameters": sum(p.numel() for p in model.parameters()),
            "held_out": final["held_out"], "train": final["train"],
            "held_out_short_prompt": final["held_out_short_prompt"], "reading_phases": reading_phases,
            "reading_replay": cfg.reading_replay, "curve": curve,
            "config": cfg.to_json()}


def _live(cfg: PerceptionConfig, start: int = 1):
    if not cfg.dvclive_dir:
        return None
    from dvclive import Live

    live = Live(cfg.dvclive_dir, save_dvc_exp=False, dvcyaml=None, resume=start > 1)
    if start > 1:
        live.step = start - 1
    return live
