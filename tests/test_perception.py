"""Perception pretraining on a reduced setting, its view carried by every model built from it, and the 8B skip."""

import json
import random

import pytest

from chimera.schema import Analysis
from chimera.screens.hud import render_frame, sample_state, sample_style
from chimera.training import perception
from chimera.training.perception import (HUD_VIEW, PerceptionConfig, perception_target, pool_rng, reading_target,
                                         redirect_to_pretrained, render_pool, train)
from chimera.vlm.backends import LocalBackend
from chimera.vlm.inference import model_fingerprint
from chimera.vlm.models import ModelConfig, ModelUnavailableError, build_tiny_model, ensure_local, load_model
from chimera.vlm.views import VIEW_FILE, View, load_view


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("perception")
    tiny = build_tiny_model(root / "tiny")
    cfg = PerceptionConfig(base_model=str(tiny), output_dir=str(root / "base"), n_frames=12, n_val=4, max_steps=6,
                           batch_size=4, learning_rate=2e-3, warmup_steps=2, eval_every=4, max_new_tokens=24,
                           reading=[{"steps": 1, "tasks": {"money": ["player_money"]}},  # step 1 reads money alone...
                                    {"steps": 2, "tasks": {"vitals": ["player_armor", "player_health"],
                                                           "view": ["player_money"]},  # every image of the view
                                     "rare_share": 1.0}],  # ...steps 2-3 the vitals, then the view, off modes...
                           reading_replay=2,  # ...steps 4-9 rehearse them, two crop-alone examples a step...
                           research_prompt_every=3,  # ...steps 6 and 9 ask the research prompt; the others do not
                           value_weights={"player_health": 4.0},  # ...and the full task weighs health's digits 4
                           value_weights_steps=4,  # ...for its first 4 steps (4-7), then 1 like every token,
                           full_task_rare={"fields": ["player_health"], "share": 1.0},  # its frames all below 100
                           dvclive_dir=str(root / "live"))
    encoded = []  # what each step was taught: (images, answer, research, reading, weights), from the real encode

    def recording_encode(processor, images, answer, research=False, reading=False, value_weights=None):
        encoded.append((images, answer, research, reading, value_weights))
        return real_encode(processor, images, answer, research, reading, value_weights)

    real_encode = perception.encode
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(perception, "encode", recording_encode)
        summary = train(cfg, progress=lambda message: None)
    return cfg, summary, root, encoded


def test_pool_never_renders_a_frame_of_the_screenshot_splits():
    """render_synthetic seeds frame i with random.Random(seed * 1_000_003 + i); the pool uses a string namespace."""
    split_states = {sample_state(random.Random(0 * 1_000_003 + i))[0].model_dump_json() for i in range(400)}
    pool_states = [sample_state(pool_rng(0, i))[0].model_dump_json() for i in range(400)]
    assert len(split_states) > 300 and not split_states & set(pool_states)


def test_reduced_run_writes_a_loadable_base_with_its_view_and_a_learning_curve(trained, tmp_path):
    cfg, summary, root, _ = trained
    assert [point["step"] for point in summary["curve"]] == [7, 9]  # every eval_every steps after the reading phases
    for point in summary["curve"]:
        for split in ("held_out", "train"):
            assert 0.0 <= point[split]["value_accuracy"] <= 1.0 and 0.0 <= point[split]["schema_valid"] <= 1.0
    assert summary["final_loss"] < summary["first_loss"] - 1.0  # from ~7.6 (ln of the 2,000-token vocabulary)
    # the DVCLive curve: loss per step, held-out and train value accuracy per field at each evaluation
    plots = root / "live" / "plots" / "metrics" / "perception"
    assert (plots / "train" / "loss.tsv").read_text().count("\n") == 1 + 2 + cfg.max_steps + 1
    assert (plots / "held_out" / "value_accuracy.tsv").is_file()
    assert (plots / "held_out" / "field" / "player_money.tsv").read_text().count("\n") == 3  # header + 2 evaluations
    assert (plots / "held_out_reading" / "field" / "player_money.tsv").read_text().count("\n") == 3  # both phase ends
    assert [phase["step"] for phase in summary["reading_phases"]] == [1, 3]
    assert [set(phase["held_out"]) for phase in summary["reading_phases"]] == [
        {"player_money"}, {"player_armor", "player_health", "player_money"}]
    held_out = [state for _, state in render_pool(cfg, cfg.n_frames, cfg.n_val)]  # the prior beside each reading
    health = [state.player_health for state in held_out]
    assert summary["reading_phases"][1]["prior"]["player_health"] == max(map(health.count, health)) / cfg.n_val
    # the base carries its view; a backend built on it shows it the crops, and a fresh load reads it back
    assert load_view(cfg.output_dir) == HUD_VIEW == View.from_json(json.loads((root / "base" / VIEW_FILE).read_text()))
    model, processor = load_model(ModelConfig(name=cfg.output_dir, min_pixels=65536, max_pixels=112896))
    backend = LocalBackend(model, processor, constrained=False, max_new_tokens=4)
    assert backend.view == HUD_VIEW
    frame = render_frame(*sample_state(random.Random(1)), sample_style(random.Random(1)))[0]
    grid = processor.image_processor(images=HUD_VIEW.images(frame), return_tensors="pt")["image_grid_thw"]
    sizes = [(int(w) * 16, int(h) * 16) for _, h, w in grid.tolist()]
    assert sizes == [HUD_VIEW.frame_size] + [size for _, size in HUD_VIEW.crops.values()]  # params pixels did not resize


def test_targets_read_the_game_state_and_judge_nothing():
    state = sample_state(random.Random(3))[0]
    target = Analysis.model_validate_json(perception_target(state))
    assert target.game_state == state
    assert target.analysis.economy_assessment == "unknown" and target.analysis.round_importance == "unknown"
    assert not (target.analysis.situation_summary or target.analysis.immediate_threats or target.analysis.opportunities)
    assert not any(target.advice.model_dump().values())


def test_pool_holds_view_images_not_frames():
    cfg = PerceptionConfig(base_model="-", output_dir="-", workers=1)
    (images, state), = render_pool(cfg, 0, 1)
    assert [im.size for im in images] == [HUD_VIEW.frame_size] + [size for _, size in HUD_VIEW.crops.values()]
    assert state.player_side in ("CT", "T")


def test_a_share_of_the_pool_is_drawn_in_the_cs2_look():
    """perception.cs2_look_share: that share of the pool's frames is drawn in the renderer's CS2 look, the same states;
    at 0 (the default) every frame is the classic render of its seed, so the committed base's pool is unchanged."""
    import numpy as np

    cfg = PerceptionConfig(base_model="-", output_dir="-", workers=1)
    classic = render_pool(cfg, 0, 16)
    mixed = render_pool(PerceptionConfig(base_model="-", output_dir="-", workers=1, cs2_look_share=0.5), 0, 16)
    rng = pool_rng(cfg.seed, 0)
    state, extras = sample_state(rng)
    first = HUD_VIEW.images(render_frame(state, extras, sample_style(rng))[0])
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(classic[0][0], first))
    assert [s for _, s in classic] == [s for _, s in mixed]
    redrawn = [i for i, ((a, _), (b, _)) in enumerate(zip(classic, mixed))
               if not np.array_equal(np.asarray(a[1]), np.asarray(b[1]))]  # the money crop
    assert 3 <= len(redrawn) <= 13, redrawn
    for i in range(16):  # only the money and vitals change: the top and inventory crops are the same pixels
        assert np.array_equal(np.asarray(classic[i][0][3]), np.asarray(mixed[i][0][3]))


def test_a_reading_phase_with_a_look_reads_only_frames_drawn_in_it(tmp_path):
    """A phase's "look" (a curriculum between the synthetic HUD's drawing and CS2's): every example it teaches is the
    crop of a pool frame drawn in that look, pixel for pixel, and its end-of-phase reading is scored on the held-out
    frames of that look alone; the full task after it takes every frame."""
    import numpy as np

    from chimera.training.perception import frame_look

    tiny = build_tiny_model(tmp_path / "tiny")
    cfg = PerceptionConfig(base_model=str(tiny), output_dir=str(tmp_path / "base"), n_frames=12, n_val=6, max_steps=1,
                           batch_size=4, warmup_steps=1, eval_every=1, max_new_tokens=8, workers=1,
                           cs2_look_share=0.5, reading=[{"steps": 2, "tasks": {"money": ["player_money"]}, "look": "cs2"}])
    looks = [frame_look(cfg.seed, i, cfg.cs2_look_share) for i in range(cfg.n_frames + cfg.n_val)]
    assert {"cs2", "classic"} <= set(looks[:cfg.n_frames]) and "cs2" in looks[cfg.n_frames:]  # both looks to choose from
    encoded = []

    def recording_encode(processor, images, answer, research=False, reading=False, value_weights=None):
        encoded.append((images, reading))
        return real_encode(processor, images, answer, research, reading, value_weights)

    real_encode = perception.encode
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(perception, "encode", recording_encode)
        summary = train(cfg, progress=lambda message: None)
    pool = render_pool(cfg, 0, cfg.n_frames)
    money = 1 + list(HUD_VIEW.crops).index("money")  # the money crop's place among the view's images

    def drawn_in(image) -> set[str]:
        return {looks[i] for i, (images, _) in enumerate(pool) if np.array_equal(np.asarray(images[money]),
                                                                                 np.asarray(image))}

    reading = [images for images, is_reading in encoded if is_reading]
    assert len(reading) == 2 * cfg.batch_size and all(drawn_in(images[0]) == {"cs2"} for images in reading)
    full = [images for images, is_reading in encoded if not is_reading]
    assert len(full) == cfg.batch_size and all(len(images) == HUD_VIEW.n_images for images in full)
    phase = summary["reading_phases"][0]
    assert phase["look"] == "cs2" and phase["n_held_out"] == looks[cfg.n_frames:].count("cs2") < cfg.n_val


def test_a_phase_look_the_pool_does_not_draw_is_refused_before_any_work(tmp_path):
    for look, share in (("cs2", 0.0), ("classic", 1.0), ("source1", 0.5)):
        cfg = PerceptionConfig(base_model=str(tmp_path / "no-model"), output_dir=str(tmp_path / "base"),
                               cs2_look_share=share, reading=[{"steps": 1, "tasks": {"money": ["player_money"]},
                                                               "look": look}])
        with pytest.raises(ValueError, match=rf"a phase's look '{look}' is not drawn in both the pool and the held-out"):
            train(cfg)
    assert not (tmp_path / "base").exists()


def test_8b_path_skips_training_and_redirects_to_the_pretrained_model(tmp_path):
    assert redirect_to_pretrained("tiny", tmp_path / "base") is None and not (tmp_path / "base").exists()
    why = redirect_to_pretrained("Qwen/Qwen3-VL-8B-Instruct", tmp_path / "base")
    assert "already reads" in why
    with pytest.raises(ModelUnavailableError, match="Qwen/Qwen3-VL-8B-Instruct"):  # offline: named, not a hang
        ensure_local(str(tmp_path / "base"))
    local = build_tiny_model(tmp_path / "a-local-pretrained-vlm")
    redirect_to_pretrained(str(local), tmp_path / "base")
    assert ensure_local(str(tmp_path / "base")) == str(local)
    model, _ = load_model(ModelConfig(name=str(tmp_path / "base")))
    assert model.config.model_type == "qwen3_vl"
    # predictions are keyed by the model the redirect names, never by the (empty) redirect folder
    assert model_fingerprint(str(tmp_path / "base")) == model_fingerprint(str(local))
    assert model_fingerprint(str(tmp_path / "base")) != model_fingerprint(str(build_tiny_model(tmp_path / "b", seed=1)))


def test_sft_from_the_base_trains_on_its_view_and_the_merged_model_keeps_it(trained, tmp_path):
    from chimera.labeling.truth import truth_label
    from chimera.screens.hud import extras_dict, png_bytes
    from chimera.training.sft import SFTRunConfig, screen_dataset
    from chimera.training.sft import train as sft_train

    cfg, _, _, _ = trained
    examples = []
    for seed in range(2):
        state, extras = sample_state(random.Random(seed))
        path = tmp_path / f"{seed}.png"
        path.write_bytes(png_bytes(render_frame(state, extras, sample_style(random.Random(seed)))[0]))
        examples.append((str(path), truth_label(str(seed), state.model_dump_json(), extras_dict(extras))["analysis"]))
    data = screen_dataset(examples, load_view(cfg.output_dir))
    assert [len(row) for row in data["images"]] == [HUD_VIEW.n_images] * 2
    assert [part["type"] for part in data[0]["prompt"][1]["content"]].count("image") == HUD_VIEW.n_images
    run = SFTRunConfig(base_model=cfg.output_dir, output_dir=str(tmp_path / "sft"), max_steps=1,
                       per_device_train_batch_size=2, modules_to_save=["lm_head"], save_steps=100)
    sft_train(run, data)
    assert load_view(tmp_path / "sft" / "final_model" / "merged_16bit") == HUD_VIEW


def test_a_crashed_run_resumes_from_its_checkpoint_on_the_same_trajectory(tmp_path):
    import torch

    tiny = build_tiny_model(tmp_path / "tiny")
    common = dict(base_model=str(tiny), n_frames=8, n_val=2, max_steps=6, batch_size=2, learning_rate=2e-3,
                  warmup_steps=2, eval_every=6, max_new_tokens=8, research_prompt_every=3, workers=1, save_every=2,
                  checkpoint_dir=str(tmp_path / "checkpoints"))
    whole = train(PerceptionConfig(output_dir=str(tmp_path / "whole"), **{**common, "checkpoint_dir": None}),
                  progress=lambda m: None)

    def crash_at_5(_, steps=[0]):
        steps[0] += 1
        if steps[0] == 5:
            raise KeyboardInterrupt("killed")

    cfg = PerceptionConfig(output_dir=str(tmp_path / "crashed"), **common)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=lambda m: None, on_step=crash_at_5)
    assert not (tmp_path / "crashed").exists()  # nothing half-written where the model goes
    messages = []
    resumed = train(cfg, progress=messages.append)
    assert resumed["resumed_from_step"] == 4 and any("resumed from the checkpoint at step 4" in m for m in messages)
    a = load_model(ModelConfig(name=str(tmp_path / "whole")))[0].state_dict()
    b = load_model(ModelConfig(name=str(tmp_path / "crashed")))[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same weights as the run that never crashed
    assert resumed["final_loss"] == whole["final_loss"]
    assert not list((tmp_path / "checkpoints").glob("*/state.pt"))  # finished: checkpoints cleared


def test_sharing_the_research_prompt_across_a_batch_gives_the_plain_loss_and_gradients(trained):
    """The research step runs the system text once and repeats its keys and values: the loss and every gradient
    must be those of the plain forward over the full rows (3-D rope positions, masks and images included)."""
    import torch

    from chimera.training.perception import collate, encode, shared_prefix_length, shared_prefix_loss

    cfg, _, _, _ = trained
    model, processor = load_model(ModelConfig(name=cfg.output_dir), for_training=True)
    model.train()
    pool = render_pool(PerceptionConfig(base_model="-", output_dir="-", workers=1), 0, 3)
    batch = collate([encode(processor, images, perception_target(state), research=True) for images, state in pool],
                    processor.tokenizer.pad_token_id)
    prefix = shared_prefix_length(batch)
    first_image = int(batch["mm_token_type_ids"][0].nonzero()[0])
    assert 500 < prefix < first_image  # the system text, never a token of a row's own

    def loss_and_grads(loss_of):
        model.zero_grad()
        loss = loss_of()
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain, plain_grads = loss_and_grads(lambda: model(**batch).loss)
    shared, shared_grads = loss_and_grads(lambda: shared_prefix_loss(model, batch, prefix))
    assert shared == pytest.approx(plain, rel=1e-5)
    assert plain_grads.keys() == shared_grads.keys()
    assert all(torch.allclose(plain_grads[n], shared_grads[n], atol=1e-6) for n in plain_grads)
    # the model's own positions matter: the rest of the rows without the prefix's offset is a different loss
    model.model.rope_deltas = None
    short = model(input_ids=batch["input_ids"][:, prefix:], attention_mask=batch["attention_mask"][:, prefix:],
                  pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"],
                  mm_token_type_ids=batch["mm_token_type_ids"][:, prefix:], labels=batch["labels"][:, prefix:]).loss
    assert short.item() != pytest.approx(plain, rel=1e-3)


@pytest.mark.parametrize("view_name", ["hud_crops", "vitals_apart"])
def test_the_view_shows_every_number_and_name_the_targets_read(view_name):
    """A label says only what its input shows: the HUD elements that must be read (numbers, names, portraits) lie
    whole inside one of the view's crops at every HUD scale, font and resolution the renderer samples (boxes from the
    renderer, not from the labels). Coarse things (enemies, banners, the radar's bomb) are left to the small frame."""
    from chimera.screens.hud import label_elements
    from chimera.training.perception import VIEWS

    view = VIEWS[view_name]

    read_in_crops = ("money", "armor", "health", "teammate_money", "portrait", "timer", "weapon", "utility", "kit",
                     "bomb_planted")
    missed = []
    for i in range(150):
        rng = random.Random(f"view-coverage:{i}")
        state, extras = sample_state(rng)
        frame, boxes = render_frame(state, extras, sample_style(rng))
        w, h = frame.size
        for field, keys in label_elements(state, extras).items():
            for key in (k for k in keys if k in boxes and k.startswith(read_in_crops)):
                x0, y0, x1, y1 = boxes[key]
                if not any(x0 >= bx0 * w - 1 and y0 >= by0 * h - 1 and x1 <= bx1 * w + 1 and y1 <= by1 * h + 1
                           for bx0, by0, bx1, by1 in view.boxes(view.hud_scale(frame)).values()):
                    missed.append((i, field, key))
    assert not missed, missed[:10]


def test_crops_follow_the_hud_scale():
    """The same HUD drawn at scale 0.85 and 1.15: in the view's anchored money crop the money text lands on the same
    pixels (within 2); in the same crop with no anchor (fixed fractions of the frame) it moves by more than 5."""
    from dataclasses import replace

    import numpy as np

    state, extras = sample_state(random.Random(5))
    state = state.model_copy(update={"round_phase": "playing", "player_money": 4350})  # white digits
    style = replace(sample_style(random.Random(5)), width=1920, height=1080, font="DejaVuSans-Bold.ttf",
                    font_scale=1.0, background="procedural").clean()
    fixed = replace(HUD_VIEW, anchors={})
    index = 1 + list(HUD_VIEW.crops).index("money")

    def text_box(view, scale):
        crop = np.asarray(view.images(render_frame(state, extras, replace(style, hud_scale=scale))[0])[index])
        ys, xs = np.nonzero(crop.min(axis=2) > 235)  # the money text's white core
        return np.array([xs.min(), ys.min(), xs.max(), ys.max()])

    assert np.abs(text_box(HUD_VIEW, 0.85) - text_box(HUD_VIEW, 1.15)).max() <= 2
    assert np.abs(text_box(fixed, 0.85) - text_box(fixed, 1.15)).max() > 5

    # a scale given to the view (bench/explore_money_reading.py --hud-scale) replaces the frame's estimate
    frame = render_frame(state, extras, replace(style, hud_scale=1.15))[0]
    assert [np.asarray(a).tobytes() for a in HUD_VIEW.images(frame, HUD_VIEW.hud_scale(frame))] == \
        [np.asarray(a).tobytes() for a in HUD_VIEW.images(frame)]
    money_at = lambda scale: np.asarray(HUD_VIEW.images(frame, scale)[index]).tobytes()  # noqa: E731
    assert money_at(1.0) != money_at(None)


def test_the_reading_phases_teach_each_number_from_its_crop_alone(trained):
    """Step 1 shows the money crop alone and asks money; steps 2-3 show the vitals crop alone and the whole view in
    turn, exactly as the view cuts them, asking armor and health, then money, drawn (rare_share 1) from the frames off
    the mode of one of them (health below 100, armor not 100); every later step shows the whole view and asks the full
    game_state, drawn (full_task_rare share 1) from the frames whose health is off its mode, its first 4 steps
    weighing health's digits (value_weights_steps), and rehearses two reading examples (reading_replay)."""
    from collections import Counter

    cfg, _, _, encoded = trained
    n = cfg.batch_size
    weights = [weights for *_, weights in encoded[3 * n:]]  # the full task's steps 4-9, each its batch and 2 rehearsed
    by_step = [weights[k:k + n + 2] for k in range(0, len(weights), n + 2)]
    assert [[w and tuple(w) for w in step[:n]] for step in by_step] == (  # the full task alone, its first 4 steps
        [[("player_health",)] * n] * cfg.value_weights_steps + [[None] * n] * 2)
    assert not any(weights for *_, is_reading, weights in encoded if is_reading)
    encoded = [example[:4] for example in encoded]
    money, mixed, rest = encoded[:n], encoded[n:3 * n], encoded[3 * n:]
    pool = [state for _, state in render_pool(cfg, 0, cfg.n_frames)]
    sizes = {name: tuple(size) for name, (_, size) in HUD_VIEW.crops.items()}
    modes = {name: Counter(getattr(state, name) for state in pool).most_common(1)[0][0]
             for name in ("player_armor", "player_health")}
    for images, answer, research, is_reading in money:
        assert is_reading and not research and [image.size for image in images] == [sizes["money"]]
        assert set(json.loads(answer)["game_state"]) == {"player_money"}
    asked = []
    for images, answer, research, is_reading in mixed:
        assert is_reading and not research
        read = json.loads(answer)["game_state"]
        asked.append(sorted(read))
        if "player_health" in read:
            assert [image.size for image in images] == [sizes["vitals"]]
            assert any(read[name] != mode for name, mode in modes.items()), read  # rare_share 1: off the modes
        else:
            assert [image.size for image in images] == [HUD_VIEW.frame_size, *sizes.values()]
    assert asked == [["player_armor", "player_health"], ["player_money"]] * n  # in turn
    assert sum(state.player_health == modes["player_health"] and state.player_armor == modes["player_armor"]
               for state in pool) > 0  # there were frames at both modes, which the vitals task never drew
    assert len(rest) == 6 * (n + 2)  # steps 4-9: the batch, then two rehearsed crops
    steps = [rest[k:k + n + 2] for k in range(0, len(rest), n + 2)]
    rehearsed = []
    for step in steps:
        for images, answer, research, is_reading in step[:n]:
            assert not is_reading and len(images) == HUD_VIEW.n_images
            assert Analysis.model_validate_json(answer)
            assert json.loads(answer)["game_state"]["player_health"] != modes["player_health"]  # full_task_rare
        for images, answer, research, is_reading in step[n:]:
            assert is_reading and not research
            rehearsed.append((images[0].size, sorted(json.loads(answer)["game_state"])))
    assert [step[0][2] for step in steps] == [False, False, True, False, False, True]  # research prompt: steps 6, 9
    money_task, vitals_task = (sizes["money"], ["player_money"]), (sizes["vitals"], ["player_armor", "player_health"])
    view_task = (HUD_VIEW.frame_size, ["player_money"])
    assert rehearsed[:6] == [money_task, vitals_task, view_task] * 2  # every reading task of every phase in turn


def test_value_weights_fall_on_the_digits_of_the_field_and_weigh_its_loss(trained):
    """The weighted tokens spell the field's value as the frame's state holds it (nothing else); the loss is the
    weighted mean of the model's own per-token losses, with the research prompt's shared prefix too."""
    import torch

    from chimera.training.perception import collate, encode
    from chimera.training.prefix import causal_lm_loss, shared_prefix_length, shared_prefix_loss

    cfg, _, _, _ = trained
    model, processor = load_model(ModelConfig(name=cfg.output_dir), for_training=True)
    pool = render_pool(PerceptionConfig(base_model="-", output_dir="-", workers=1), 0, 4)
    weights = {"player_health": 5.0, "player_armor": 3.0, "weapon_secondary": 2.0}
    for research in (False, True):
        items = [encode(processor, images, perception_target(state), research, value_weights=weights)
                 for images, state in pool]
        for item, (_, state) in zip(items, pool):
            for name, w in weights.items():
                spelled = processor.tokenizer.decode(item["input_ids"][item["weights"] == w])
                assert spelled == json.dumps(getattr(state, name)).strip("\"")
            assert (item["weights"][item["labels"] == -100] == 0).all()  # the prompt weighs nothing
            assert int((item["weights"] == 1).sum()) > 100  # the rest of the answer weighs 1
        batch = collate(items, processor.tokenizer.pad_token_id)
        plain = {k: v for k, v in batch.items() if k != "weights"}
        with torch.no_grad():
            # the model's own mean loss over all answer tokens, and over each field's tokens alone
            n_all, loss_all = int((batch["labels"] != -100).sum()), model(**plain).loss.item()
            total, count = n_all * loss_all, float(n_all)
            for name, w in weights.items():
                only = torch.where(batch["weights"] == w, batch["labels"], -100)
                n_field = int((only != -100).sum())
                total += (w - 1) * n_field * model(**{**plain, "labels": only}).loss.item()
                count += (w - 1) * n_field
            weighted = causal_lm_loss(model, batch).item()
            assert weighted == pytest.approx(total / count, rel=1e-5)
            assert weighted != pytest.approx(loss_all, rel=1e-3)  # the weights changed it
            assert causal_lm_loss(model, plain).item() == loss_all  # unweighted: the model's own loss, exactly
            if research:
                shared = shared_prefix_loss(model, batch, shared_prefix_length(batch)).item()
                assert shared == pytest.approx(weighted, rel=1e-5)


def test_reading_targets_are_the_full_targets_numbers_in_the_same_words():
    """The first phase's answer holds the three numbers of the state, written as the full target writes them (the
    same keys, order and separators), so what is learned there is what the full answer says."""
    for i in range(20):
        state = sample_state(random.Random(i))[0]
        target = reading_target(state, ["player_money", "player_health", "player_armor"])
        assert json.loads(target) == {"game_state": {"player_health": state.player_health,
                                                     "player_armor": state.player_armor,
                                                     "player_money": state.player_money}}
        assert target[len('{"game_state":{'):-2] in perception_target(state)


def test_the_report_names_every_phase_of_the_base(trained):
    from chimera.evaluation.report import perception_lines

    _, summary, _, _ = trained
    text = "\n".join(perception_lines(summary))
    assert "9 steps: 1 reading the money crop alone (held out then: player_money" in text
    assert " for its most common value" in text
    assert "2 reading the vitals crop alone and the whole view, in turn (held out then: player_armor" in text
    assert "then 6 on the full game_state, rehearsing the reading (2 examples a step), on 12 rendered frames" in text


def test_a_reading_phase_on_a_crop_the_view_lacks_is_refused_before_any_work(tmp_path):
    from chimera.training.perception import VIEWS

    cfg = PerceptionConfig(base_model=str(tmp_path / "no-model"), output_dir=str(tmp_path / "base"),
                           reading=[{"steps": 10, "tasks": {"money": ["player_money"]}}],
                           view=VIEWS["whole_frame"].to_json())
    with pytest.raises(ValueError, match=r"reading: the view has no crop \['money'\]"):
        train(cfg)
    assert not (tmp_path / "base").exists()


def test_a_field_the_game_state_lacks_is_refused_before_any_work(tmp_path):
    """A share of the pool outside 0-1, or a misspelt field in a reading task, in value_weights or in full_task_rare
    (or a misspelt key of it), would silently drop out of the targets, weights or draws."""
    from chimera.training.perception import stage_config

    for reading, weights in (([{"steps": 10, "tasks": {"money": ["player_cash"]}}], {}),
                             ([], {"player_hp": 5.0})):
        cfg = PerceptionConfig(base_model=str(tmp_path / "no-model"), output_dir=str(tmp_path / "base"),
                               reading=reading, value_weights=weights)
        with pytest.raises(ValueError, match=r"no game_state field \['player_(cash|hp)'\]"):
            train(cfg)
    cfg = PerceptionConfig(base_model=str(tmp_path / "no-model"), output_dir=str(tmp_path / "base"),
                           full_task_rare={"fields": ["player_health"], "shares": 0.5})
    with pytest.raises(ValueError, match=r"full_task_rare takes fields and share, not \['fields', 'shares'\]"):
        train(cfg)
    cfg = PerceptionConfig(base_model=str(tmp_path / "no-model"), output_dir=str(tmp_path / "base"),
                           full_task_rare={"fields": ["player_hp"], "share": 0.5})
    with pytest.raises(ValueError, match=r"no game_state field \['player_hp'\]"):
        train(cfg)
    cfg = PerceptionConfig(base_model=str(tmp_path / "no-model"), output_dir=str(tmp_path / "base"), cs2_look_share=50)
    with pytest.raises(ValueError, match=r"cs2_look_share is a share of the pool, from 0 to 1, not 50"):
        train(cfg)
    assert not (tmp_path / "base").exists()
    p = {"out": "b", "n_frames": 1, "n_val": 1, "max_steps": 1, "batch_size": 1, "learning_rate": 1e-3,
         "warmup_steps": 1, "eval_every": 1, "short_prompt_steps": 0, "research_prompt_every": 1, "reading": [],
         "reading_replay": 0, "value_weights": {}, "value_weights_steps": 0, "full_task_rare": {},
         "patch_embed_as_linear": False, "cs2_look_share": 0.0, "view": "hud_crops"}
    assert stage_config(p, "tiny", 3, [], "shots", max_steps=7).max_steps == 7
    assert stage_config({**p, "patch_embed_as_linear": True}, "tiny", 3, [], "shots").patch_embed_as_linear
    assert stage_config({**p, "value_weights_steps": 900}, "tiny", 3, [], "shots").value_weights_steps == 900
    assert stage_config({**p, "cs2_look_share": 0.5}, "tiny", 3, [], "shots").cs2_look_share == 0.5
    with pytest.raises(TypeError):
        stage_config(p, "tiny", 3, [], "shots", max_step=7)  # misspelt: refused, not a silent new attribute
