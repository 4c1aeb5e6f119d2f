"""Training on the tiny Qwen3-VL (random weights, local tokenizer): LoRA wiring, frozen vision, resume, the
merged export, GRPO reward logging, every reward on hand-made completions, and the overfit check."""

import json
import random
import re

import pytest
from PIL import Image
import torch
from transformers import TrainerCallback

from chimera.labeling.truth import truth_label
from chimera.schema import Analysis, GameState, example_analysis, to_json
from chimera.screens.hud import Style, extras_dict, png_bytes, render_frame, sample_state
from chimera.training.grpo import GRPORunConfig, grpo_dataset, train_grpo
from chimera.training.overfit import overfit
from chimera.evaluation.metrics import consistency, grounding
from chimera.training.rewards import (REWARDS, advice_reward, consistency_reward, format_reward, perception_reward,
                                      grounding_reward, strategy_reward)
from chimera.training.sft import (SFTRunConfig, dry_run, evaluate_only, load_for_training, make_trainer, screen_dataset,
                                  answer_dataset, train)
from chimera.vlm.backends import LocalBackend
from chimera.vlm.models import ModelConfig, build_tiny_model, load_model, load_processor

SMALL = {"max_pixels": 128 * 128, "min_pixels": 32 * 32}  # ~16 image tokens: fast on CPU


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(build_tiny_model(tmp_path_factory.mktemp("models") / "tiny"))


@pytest.fixture(scope="module")
def screens(tmp_path_factory):
    """Four rendered 256x144 frames with their exact truth labels."""
    folder = tmp_path_factory.mktemp("screens")
    out = []
    for seed in range(4):
        state, extras = sample_state(random.Random(seed))
        image, _ = render_frame(state, extras, Style(width=256, height=144, seed=seed))
        path = folder / f"{seed}.png"
        path.write_bytes(png_bytes(image))
        record = truth_label(f"id{seed}", state.model_dump_json(), extras_dict(extras))
        out.append((f"id{seed}", str(path), record["analysis"]))
    return out


def cfg(tiny, tmp_path, **kw):
    settings = {"per_device_train_batch_size": 2, "learning_rate": 2e-3, "logging_steps": 1,
                "modules_to_save": ["lm_head"], **SMALL, **kw}
    return SFTRunConfig(base_model=tiny, output_dir=str(tmp_path / "run"), **settings)


# --------------------------------------------------------------------------------------------------
# LoRA wiring
# --------------------------------------------------------------------------------------------------

def test_only_lora_and_lm_head_are_trainable(tiny, tmp_path, screens):
    c = cfg(tiny, tmp_path)
    model, processor = load_for_training(c)
    trainer = make_trainer(c, model, processor, screen_dataset([(p, a) for _, p, a in screens]))
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable, "nothing to train"
    for name in trainable:
        assert "lora_" in name or "lm_head.modules_to_save" in name, name
        assert "visual" not in name, f"vision tower must stay frozen: {name}"
    # every language projection got an adapter, and nothing in the vision tower did
    lora_modules = {n.rsplit(".lora_", 1)[0] for n in trainable if "lora_" in n}
    layers = model.config.text_config.num_hidden_layers
    assert len(lora_modules) == 7 * layers
    assert all("language_model" in m for m in lora_modules)


def test_sft_runs_the_shared_system_prompt_once_with_trls_loss_and_gradients(tiny, tmp_path, screens, monkeypatch):
    """The trainer's batches (trl's vision collator, flushed left) share the research prompt's system text; the
    shared-prefix loss must equal trl's own, gradients included, and it must actually be taken."""
    from trl import SFTTrainer

    from chimera.training.prefix import shared_prefix_length

    c = cfg(tiny, tmp_path, per_device_train_batch_size=4, lora_dropout=0.0)
    torch.manual_seed(0)
    model, processor = load_for_training(c)
    trainer = make_trainer(c, model, processor, screen_dataset([(p, a) for _, p, a in screens]))
    batch = next(iter(trainer.get_train_dataloader()))
    assert shared_prefix_length(batch) > 500  # the system text, shared by every row
    trainer.model.train()

    def loss_and_grads(compute):
        trainer.model.zero_grad()
        loss = compute(trainer, trainer.model, dict(batch))
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}

    def trl_path(*args, **kwargs):
        raise AssertionError("the shared-prefix path was not taken")

    with monkeypatch.context() as patched:  # trl's own loss is off limits while the shared path computes
        patched.setattr(SFTTrainer, "compute_loss", trl_path)
        shared, shared_grads = loss_and_grads(type(trainer).compute_loss)
    plain, plain_grads = loss_and_grads(SFTTrainer.compute_loss)
    assert shared == pytest.approx(plain, rel=1e-5)
    assert shared_grads.keys() == plain_grads.keys() and len(shared_grads) > 0
    for name, grad in plain_grads.items():
        assert torch.allclose(shared_grads[name], grad, atol=1e-5, rtol=1e-3), name


def test_text_pretraining_leaves_vision_bit_identical_and_merged_model_generates(tiny, tmp_path, screens):
    before, _ = load_model(ModelConfig(name=tiny))
    vision_before = {k: v.clone() for k, v in before.state_dict().items() if ".visual." in f".{k}"}
    assert vision_before, "the tiny model should have a vision tower"
    examples = [(f"Round {i + 2}, score CT 3 - T {i}.",
                 GameState(player_health=30 + i, alive_teammates=2, alive_enemies=2, bomb_status="planted").model_dump_json(),
                 '{"analysis":{"economy_assessment":"full-buy"}}') for i in range(8)]
    processor = load_processor(tiny)
    summary = train(cfg(tiny, tmp_path, max_steps=4), answer_dataset(processor, examples, "You are a CS2 analyst."))
    assert summary["steps"] == 4 and summary["final_loss"] < summary["first_loss"]

    merged_path = tmp_path / "run" / "final_model" / "merged_16bit"
    merged, processor = load_model(ModelConfig(name=str(merged_path), **SMALL))
    after = merged.state_dict()
    for key, value in vision_before.items():
        # the export is bf16: the frozen tower must equal the original cast to bf16, bit for bit
        assert torch.equal(after[key].to(torch.bfloat16), value.to(torch.bfloat16)), key
    language = [k for k in after if "language_model" in k and k.endswith("q_proj.weight")]
    assert any(not torch.equal(after[k].float(), before.state_dict()[k].to(torch.bfloat16).float()) for k in language), \
        "the merged language model should differ from the base after training"
    adapter = json.loads((tmp_path / "run" / "final_model" / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 16

    # the merged export loads through the same path as any model and generates
    prediction = LocalBackend(merged, processor, "merged", max_new_tokens=8, constrained=False).analyze([screens[0][:2]])[0]
    assert prediction.error is None and prediction.raw_text


def test_strategy_pretraining_trains_what_follows_the_game_state_and_not_the_state(tiny, tmp_path):
    """answer_dataset puts the game_state inside the prompt, as the answer the model writes for a screenshot begins:
    trl's labels are the tokens after it (analysis, outcome, end of turn), never the state's own values."""
    state = GameState(player_health=37, player_money=4150, alive_teammates=1, alive_enemies=3).model_dump_json()
    rest = '{"analysis":{"economy_assessment":"half-buy"},"outcome":{"round_won":false}}'
    model, processor = load_for_training(cfg(tiny, tmp_path))
    prose = "Map de_inferno, round 7, score CT 4 - T 2."
    trainer = make_trainer(cfg(tiny, tmp_path), model, processor,
                           answer_dataset(processor, [(prose, state, rest)] * 2, "Sys."))
    row = trainer.train_dataset[0]
    decode = processor.tokenizer.decode
    trained = decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100])
    context = decode([t for t, label in zip(row["input_ids"], row["labels"]) if label == -100])
    assert trained.endswith(rest[1:] + "<|im_end|>") and '"analysis"' in trained
    assert "4150" not in trained and "37" not in trained  # the state is read, not learned
    assert context.endswith('<|im_start|>assistant\n{"game_state":' + state[:-1])  # the boundary `},"` merges into one token
    assert prose in context and "round 7" not in trained  # the user turn is read too, never learned
    with pytest.raises(ValueError, match="one JSON object"):
        answer_dataset(processor, [(prose, state, '"analysis":{}')], "Sys.")


def test_strategy_targets_follow_from_their_pretraining_prompt(tiny):
    """A label says only what its input shows: every strategy target's economy and round importance are recomputed
    by the strategist's rules from the pretraining prompt alone (its game_state, and the round and score the prose
    states). Pistol rounds and match points occur, so the round and the score are needed, not decoration."""
    import numpy as np
    from test_demos import _synthetic_snapshots

    from chimera.demos.strategy_dataset import STRATEGY_SYSTEM_PROMPT, build_examples, pretraining_examples
    from chimera.strategist import Context, economy, importance

    snaps = _synthetic_snapshots(n_matches=2, rounds=24)
    rng = np.random.default_rng(1)
    snaps["ct_score"], snaps["t_score"] = rng.integers(0, 13, len(snaps)), rng.integers(0, 13, len(snaps))
    snaps["p_ct_win"] = 0.5
    data = answer_dataset(load_processor(tiny), pretraining_examples(build_examples(snaps)), STRATEGY_SYSTEM_PROMPT)
    seen = set()
    for prompt, completion in zip(data["prompt"], data["completion"]):
        stated = re.search(r"round (\d+), score (?:CT|T) (\d+) - (?:CT|T) (\d+)\.", prompt)
        assert stated, f"the prompt does not state the round and score: {prompt[-400:]!r}"
        state = GameState.model_validate_json(prompt[prompt.rindex('{"game_state":') + len('{"game_state":'):-1])
        ctx = Context(round_num=int(stated[1]), own_score=int(stated[2]), enemy_score=int(stated[3]))
        target = json.loads("{" + completion)["analysis"]
        assert (target["economy_assessment"], target["round_importance"]) == (economy(state, ctx), importance(state, ctx))
        seen |= {target["economy_assessment"], target["round_importance"]}
    assert {"pistol", "critical", "high"} <= seen



def test_reading_rehearsal_rows_train_their_game_state_beside_the_text(tiny, tmp_path, screens):
    """with_images + rehearsal_rows: one trl batch holds text rows and frames; a frame's trained tokens are its
    whole game_state (read from its own state, under the short reading prompt, with its image tokens in the input),
    a text row's are its completion, and a mixed run trains and evaluates on the text val rows."""
    from chimera.training.perception import rehearsal_rows
    from chimera.training.sft import with_images

    processor = load_processor(tiny)
    frames = [([Image.open(path).convert("RGB")], GameState.model_validate(analysis["game_state"]))
              for _, path, analysis in screens[:2]]
    state = GameState(player_money=4150).model_dump_json()
    text = answer_dataset(processor, [("Round 3, score CT 1 - T 1.", state, '{"analysis":{"economy_assessment":"eco"}}')],
                          "Sys.")
    mixed = with_images(text, rehearsal_rows(processor, frames))
    assert len(mixed) == 3 and [len(images) for images in mixed["images"]] == [0, 1, 1]
    model, processor = load_for_training(cfg(tiny, tmp_path))
    trainer = make_trainer(cfg(tiny, tmp_path, per_device_train_batch_size=3), model, processor, mixed)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    decode = processor.tokenizer.decode
    trained = [decode(ids[labels != -100]) for ids, labels in zip(batch["input_ids"], batch["labels"])]
    assert trained[0].startswith('"analysis":{"economy_assessment":"eco"}')
    for (_, frame_state), answer, ids in zip(frames, trained[1:], batch["input_ids"][1:]):
        game_state = json.loads(answer.removesuffix("<|im_end|>"))["game_state"]
        assert game_state == frame_state.model_dump(mode="json")  # the frame's own state, every field
        assert (ids == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum() > 0
    summary = train(cfg(tiny, tmp_path, max_steps=2, per_device_train_batch_size=3, merge=False), mixed,
                    eval_dataset=with_images(text, []))
    assert summary["steps"] == 2 and summary["final_val_loss"] is not None
    # batched like with like: within each of the length-grouped sampler's megabatches (5 batches here) the rows are
    # sorted, so at most its one boundary batch mixes text and frames (a random sampler mixes about 7 in 8 batches)
    many = with_images(answer_dataset(processor, [(f"Round {i}.", state, '{"analysis":{}}') for i in range(40)], "Sys."),
                       rehearsal_rows(processor, frames * 20))
    order = list(make_trainer(cfg(tiny, tmp_path, per_device_train_batch_size=4), model, processor, many)._get_train_sampler())
    kinds = [{len(many[i]["images"]) > 0 for i in order[k:k + 4]} for k in range(0, len(order), 4)]
    assert len(kinds) == 20 and sum(len(kind) > 1 for kind in kinds) <= 4
    # a batch of text alone through the vision collator has no image_grid_thw: trl's own loss, not the shared prefix
    long_system = "You are Chimera, a Counter-Strike 2 analyst. " * 8  # a common prefix long enough to share
    texts = with_images(answer_dataset(processor, [(f"Round {i}.", state, '{"analysis":{}}') for i in range(4)],
                                       long_system), [])
    assert train(cfg(tiny, tmp_path / "text", max_steps=1, merge=False), texts)["steps"] == 1


def test_evaluate_only_is_the_val_loss_a_run_starts_from(tiny, tmp_path):
    """The vision-only arm's pretraining stage takes no step: evaluate_only reports the base's val loss, the one a
    run whose weights do not move (learning rate 0) reports, above what a trained run reaches, as step 0 of a curve."""
    processor = load_processor(tiny)
    state = GameState(player_money=4150).model_dump_json()
    texts = answer_dataset(processor, [(f"Round {i}.", state, '{"analysis":{"economy_assessment":"eco"}}')
                                       for i in range(4)], "Sys.")
    base = evaluate_only(cfg(tiny, tmp_path / "base", dvclive_dir=str(tmp_path / "live"),
                             checkpoint_dir=str(tmp_path / "checkpoints")), texts)
    assert base["steps"] == 0 and base["first_val_loss"] == base["final_val_loss"] == base["best_val_loss"]
    assert not (tmp_path / "checkpoints").exists()  # nothing to resume: no folder left behind
    still = train(cfg(tiny, tmp_path / "still", max_steps=1, learning_rate=0.0, merge=False), texts, eval_dataset=texts)
    assert base["final_val_loss"] == pytest.approx(still["final_val_loss"], rel=1e-5)
    trained = train(cfg(tiny, tmp_path / "trained", max_steps=6, merge=False), texts, eval_dataset=texts)
    assert trained["final_val_loss"] < base["final_val_loss"] - 0.5
    curve = (tmp_path / "live" / "plots" / "metrics" / "eval" / "loss.tsv").read_text().splitlines()
    assert curve[0] == "step\tloss" and len(curve) == 2  # one point, at step 0, the base's loss
    assert curve[1].split("\t")[0] == "0" and float(curve[1].split("\t")[1]) == pytest.approx(base["final_val_loss"])


def test_resume_continues_from_the_saved_step(tiny, tmp_path, screens):
    data = screen_dataset([(p, a) for _, p, a in screens])
    first = train(cfg(tiny, tmp_path, max_steps=2, save_steps=2, merge=False), data)
    assert first["steps"] == 2 and (tmp_path / "run" / "checkpoint-2").exists()
    second = train(cfg(tiny, tmp_path, max_steps=4, save_steps=2, merge=False), data, resume=True)
    assert second["resumed_from_step"] == 2 and second["steps"] == 4
    state = json.loads((tmp_path / "run" / "checkpoint-4" / "trainer_state.json").read_text())
    logged = [h for h in state["log_history"] if "loss" in h]
    assert [h["step"] for h in logged] == [1, 2, 3, 4]
    first_state = json.loads((tmp_path / "run" / "checkpoint-2" / "trainer_state.json").read_text())
    # steps 1-2 come from the checkpoint, not from a fresh start
    assert logged[:2] == [h for h in first_state["log_history"] if "loss" in h]


class CrashAt:
    """A TrainerCallback that kills the run at a step, as a SIGKILL or an OOM would (after its checkpoint)."""

    def __new__(cls, step):
        from transformers import TrainerCallback

        class _Crash(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == step:
                    raise RuntimeError(f"crash at step {step}")

        return _Crash()


def test_a_crashed_run_resumes_by_itself_and_cleans_up(tiny, tmp_path, screens):
    """Checkpoints live outside the output (which `dvc repro` wipes) until the run finishes; a rerun of the same
    config continues from the last one, a changed config starts afresh."""
    data = screen_dataset([(p, a) for _, p, a in screens])
    ck = tmp_path / "ck"
    run = lambda **kw: cfg(tiny, tmp_path, max_steps=4, save_steps=2, checkpoint_dir=str(ck), **kw)  # noqa: E731
    with pytest.raises(RuntimeError, match="crash at step 3"):
        train(run(merge=False), data, callbacks=[CrashAt(3)])
    assert (ck / "checkpoint-2").exists() and not (tmp_path / "run" / "final_model").exists()
    with pytest.raises(RuntimeError, match="crash at step 3"):  # another learning rate: its own run
        train(run(merge=False, learning_rate=1e-3), data, callbacks=[CrashAt(3)])
    again = train(run(merge=True, learning_rate=1e-3), data)
    assert again["resumed_from_step"] == 2 and again["steps"] == 4
    assert not ck.exists()  # finished: checkpoints gone
    assert (tmp_path / "run" / "final_model" / "merged_16bit" / "config.json").exists()
    with pytest.raises(RuntimeError, match="crash at step 3"):
        train(run(merge=False), data, callbacks=[CrashAt(3)])
    fresh = train(run(merge=False, seed=1), data)  # a changed config never resumes another run's checkpoint
    assert fresh["resumed_from_step"] == 0


def test_the_merge_folds_lora_in_place_without_a_second_copy(tiny, tmp_path, screens):
    from chimera.training.sft import merge_and_save

    c = cfg(tiny, tmp_path)
    model, processor = load_for_training(c)
    peft_model = make_trainer(c, model, processor, screen_dataset([(p, a) for _, p, a in screens])).model
    base = peft_model.get_base_model()
    assert any("lora" in name for name, _ in base.named_modules())
    merge_and_save(peft_model, processor, tmp_path / "merged")
    assert not any("lora" in name for name, _ in base.named_modules())  # this very object was merged
    assert (tmp_path / "merged" / "config.json").exists()


def test_dry_run_reports_memory_and_an_estimate(tiny, tmp_path, screens):
    report = dry_run(cfg(tiny, tmp_path), screen_dataset([(p, a) for _, p, a in screens]))
    assert report["device"] == "cpu" and report["memory_kind"] == "process peak RSS"
    assert report["one_step_peak_mb"] >= report["after_load_mb"] > 0
    assert report["estimated_full_run_mb"] >= report["after_load_mb"]
    assert 0 < report["trainable_params"] < report["total_params"]


# --------------------------------------------------------------------------------------------------
# GRPO
# --------------------------------------------------------------------------------------------------

def test_grpo_runs_and_logs_every_reward(tiny, tmp_path, screens):
    dataset = grpo_dataset([(p, a, 0.6) for _, p, a in screens])
    c = GRPORunConfig(base_model=tiny, output_dir=str(tmp_path / "grpo"), max_steps=1, per_device_train_batch_size=2,
                      num_generations=2, max_completion_length=12, max_pixels=SMALL["max_pixels"], constrained=False)
    summary = train_grpo(c, dataset)
    assert summary["steps"] == 1
    assert set(summary["reward_means"]) == {fn.__name__ for fn in REWARDS}
    assert all(v is not None and 0.0 <= v <= 1.0 for v in summary["reward_means"].values())
    assert summary["reward_means"]["format_reward"] < 1.0  # a random model sampling freely writes no valid answer
    assert set(summary["reward_windows"]["first"]) == {"reward", *summary["reward_means"]}
    assert (tmp_path / "grpo" / "final_model" / "merged_16bit" / "config.json").exists()
    # every completion's reward, by signal, step and prompt: one row per signal for the one step, as trl scored it
    rows = [json.loads(line) for line in (tmp_path / "grpo" / "reward_log.jsonl").read_text().splitlines()]
    assert sorted(r["signal"] for r in rows) == sorted(fn.__name__ for fn in REWARDS)
    assert {r["step"] for r in rows} == {0}
    for row in rows:
        assert len(row["value"]) == len(row["example"]) == 2 and set(row["example"]) <= set(range(len(dataset)))
        assert sum(row["value"]) / 2 == pytest.approx(summary["reward_means"][row["signal"]], abs=1e-6)
    assert summary["reward_paired"]["prompts"] == 0  # one step: no prompt was drawn twice


def test_grpo_samples_inside_the_schema(tiny, tmp_path, screens):
    """Constrained (the default), even a random model's every sample is a schema-valid answer, so the rewards that
    read the analysis score what it says instead of 0 for unparseable text."""
    dataset = grpo_dataset([(p, a, 0.6) for _, p, a in screens[:2]])
    seen = []

    class Completions(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            seen.append(logs or {})

    c = GRPORunConfig(base_model=tiny, output_dir=str(tmp_path / "grpo"), max_steps=1, per_device_train_batch_size=2,
                      num_generations=2, max_completion_length=12, max_pixels=SMALL["max_pixels"], merge=False)
    summary = train_grpo(c, dataset, callbacks=[Completions()])
    assert summary["reward_means"]["format_reward"] == 1.0
    assert 0.0 < summary["reward_means"]["consistency_reward"]  # parsed: the rules read its fields
    assert any(logs.get("completions/clipped_ratio") == 0 for logs in seen)  # never cut at max_completion_length
    assert 0.0 < summary["free_token_fraction"] < 1.0  # some tokens the schema forced, some the model chose


def _schema_replay(trainer, ids, mask) -> list[torch.Tensor]:
    """For each completion, the tokens the schema allowed at each of its positions ([tokens, vocab] flags), found by
    replaying it through a fresh llguidance matcher, independently of what the trainer recorded while sampling."""
    import llguidance
    import llguidance.torch as llt

    from chimera.vlm.constrained import _grammar, ll_tokenizer

    tokenizer = trainer.processing_class.tokenizer
    n_vocab = trainer.model.get_output_embeddings().weight.shape[0]
    rows = []
    for row in range(ids.shape[0]):
        matcher = llguidance.LLMatcher(ll_tokenizer(tokenizer, n_vocab), _grammar())
        steps = []
        for token in ids[row][mask[row].bool()].tolist():
            if matcher.is_stopped():  # the answer is complete: the policy allows EOS or padding (SchemaLogitsProcessor)
                allowed = torch.zeros(n_vocab, dtype=torch.bool)
                allowed[[tokenizer.eos_token_id, tokenizer.pad_token_id]] = True
            else:
                bitmask = llt.allocate_token_bitmask(1, n_vocab)
                llt.fill_next_token_bitmask(matcher, bitmask, 0)
                allowed = ((bitmask.unsqueeze(-1) >> torch.arange(32, dtype=torch.int32)) & 1).reshape(-1)[:n_vocab].bool()
            assert allowed[token], "a sample left the schema"
            steps.append(allowed)
            if not matcher.is_stopped():
                matcher.consume_token(token)
        rows.append(torch.stack(steps))
    return rows


def test_grpo_leaves_the_tokens_the_schema_forced_out_of_the_loss(tiny, tmp_path, screens):
    """A token the schema forced had probability 1 under the policy that sampled it, so no gradient belongs to it:
    trl's loss mask, and the token count that normalizes the loss, leave it out. Which tokens were forced is found
    by replaying each completion through a fresh llguidance matcher, not read from the recorder."""
    from chimera.training.grpo import build_grpo_trainer

    dataset = grpo_dataset([(p, a, 0.6) for _, p, a in screens[:1]])
    c = GRPORunConfig(base_model=tiny, output_dir=str(tmp_path / "grpo"), max_steps=1, per_device_train_batch_size=2,
                      num_generations=2, max_completion_length=12, max_pixels=SMALL["max_pixels"], merge=False)
    trainer, _ = build_grpo_trainer(c, dataset)
    out = trainer._generate_and_score_completions([dataset[0], dataset[0]])
    ids, mask, free = out["completion_ids"], out["completion_mask"], out["tool_mask"]
    for row, replay in enumerate(_schema_replay(trainer, ids, mask)):
        expected = (replay.sum(-1) != 1).int().tolist()
        assert free[row, :len(expected)].tolist() == expected
        assert 0 < sum(expected) < len(expected)  # forced keys and braces, chosen values
    assert int(out["num_items_in_batch"]) == int((mask * free).sum())  # dapo's normalizer counts free tokens only


def test_grpo_over_allowed_takes_the_gradient_of_the_policy_that_sampled(tiny, tmp_path, screens):
    """With logprobs_over_allowed, trl's loss is the policy gradient of constrained sampling: each chosen token's
    log-probability under the model renormalized over the tokens the schema allowed there (found by a matcher
    replay). The gradient of trl's loss points where the replay's does, and away from the unconstrained one's."""
    from chimera.training.grpo import build_grpo_trainer

    dataset = grpo_dataset([(p, a, 0.6) for _, p, a in screens[:2]])
    c = GRPORunConfig(base_model=tiny, output_dir=str(tmp_path / "grpo"), max_steps=1, per_device_train_batch_size=4,
                      num_generations=2, max_completion_length=12, max_pixels=SMALL["max_pixels"], merge=False,
                      temperature=0.7, logprobs_over_allowed=True)
    trainer, _ = build_grpo_trainer(c, dataset)
    out = trainer._generate_and_score_completions([dataset[0], dataset[0], dataset[1], dataset[1]])
    ids, mask, free = out["completion_ids"], out["completion_mask"], out["tool_mask"]
    allowed = torch.ones(*ids.shape, out["allowed"].shape[-1], dtype=torch.bool)
    for row, replay in enumerate(_schema_replay(trainer, ids, mask)):
        allowed[row, :len(replay)] = replay
    in_answer = mask.bool()  # after its EOS a row's flags are padding, outside the loss
    assert torch.equal(out["allowed"][in_answer], allowed[in_answer])  # the flags that travel with the batch

    model = trainer.model
    params = [p for p in model.parameters() if p.requires_grad]
    trainer.current_gradient_accumulation_steps = 1  # trl's loss reads it; the training loop sets it per step
    trl = torch.cat([g.flatten() for g in torch.autograd.grad(trainer.compute_loss(model, out), params)])
    n_prompt = out["prompt_ids"].shape[1]
    vision = {k: out[k] for k in ("pixel_values", "image_grid_thw", "mm_token_type_ids") if k in out}
    logits = model(input_ids=torch.cat([out["prompt_ids"], ids], 1),
                   attention_mask=torch.cat([out["prompt_mask"], mask], 1),
                   **vision).logits[:, n_prompt - 1:-1].float() / c.temperature

    def gradient(flags):
        logp = logits.masked_fill(~flags, float("-inf")).log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        loss = -(out["advantages"].unsqueeze(-1) * logp.masked_fill(mask * free == 0, 0.0)).sum()
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params, retain_graph=True)])

    def cosine(a, b):
        return float(torch.nn.functional.cosine_similarity(a, b, dim=0))

    assert out["advantages"].abs().sum() > 0
    assert 1 - cosine(trl, gradient(allowed)) < 1e-5  # float sums in another order: about 5e-7 here
    assert 1 - cosine(trl, gradient(torch.ones_like(allowed))) > 1e-3  # the unconstrained scoring's: about 8e-3


def test_allowed_token_logps_in_tiles_are_the_whole_batch_logps():
    """The log-probabilities over the allowed tokens, formed a tile of positions at a time, are those of the whole
    batch at once, gradients included; a forced position has log-probability 0 and entropy 0."""
    from chimera.training.grpo import allowed_token_logps

    torch.manual_seed(0)
    head = torch.nn.Linear(8, 11, bias=False)
    hidden = torch.randn(2, 5, 8, requires_grad=True)
    tokens = torch.randint(0, 11, (2, 5))
    allowed = torch.rand(2, 5, 11) > 0.5
    allowed.scatter_(-1, tokens.unsqueeze(-1), True)
    allowed[0, 1] = torch.nn.functional.one_hot(tokens[0, 1], 11).bool()  # one token left: forced
    logits = head(hidden) / 0.7
    expected = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - logits.masked_fill(~allowed, float("-inf")).logsumexp(-1)
    for tile in (3, 10, None):
        logps, entropy = allowed_token_logps(head, hidden, tokens, allowed, 0.7, tile_tokens=tile)
        assert torch.allclose(logps, expected, atol=1e-5)
        assert float(logps[0, 1]) == pytest.approx(0.0, abs=1e-6) and float(entropy[0, 1]) == pytest.approx(0.0, abs=1e-6)
        assert bool((entropy >= -1e-6).all())
        grad, = torch.autograd.grad(logps.sum(), hidden)
        want, = torch.autograd.grad(expected.sum(), hidden, retain_graph=True)
        assert torch.allclose(grad, want, atol=1e-5)


def test_grpo_saves_checkpoints_and_resumes_after_a_crash(tiny, tmp_path, screens):
    dataset = grpo_dataset([(p, a, 0.6) for _, p, a in screens])
    c = GRPORunConfig(base_model=tiny, output_dir=str(tmp_path / "grpo"), max_steps=2, per_device_train_batch_size=2,
                      num_generations=2, max_completion_length=8, max_pixels=SMALL["max_pixels"], save_steps=1,
                      checkpoint_dir=str(tmp_path / "ck"), merge=False, constrained=False)
    with pytest.raises(RuntimeError, match="crash at step 2"):
        train_grpo(c, dataset, callbacks=[CrashAt(2)])
    assert (tmp_path / "ck" / "checkpoint-1").exists()
    summary = train_grpo(c, dataset)
    assert summary["resumed_from_step"] == 1 and summary["steps"] == 2 and not (tmp_path / "ck").exists()
    # the crashed step was scored again after the resume: its rows from before the crash are gone, not doubled
    rows = [json.loads(line) for line in (tmp_path / "grpo" / "reward_log.jsonl").read_text().splitlines()]
    assert sorted((r["step"], r["signal"]) for r in rows) == sorted(
        (step, fn.__name__) for step in (0, 1) for fn in REWARDS)


def _log_rows(values: dict[tuple[int, int], float]) -> list[dict]:
    """RewardLog rows: {(step, example): reward} for every signal alike, two completions per prompt (0.01 apart)."""
    rows = []
    for step in sorted({s for s, _ in values}):
        examples = [e for s, e in values if s == step]
        for fn in REWARDS:
            rows.append({"step": step, "signal": fn.__name__, "example": [e for e in examples for _ in range(2)],
                         "value": [values[(step, e)] + d for e in examples for d in (-0.01, 0.01)]})
    return rows


def test_paired_reward_change_pairs_each_prompt_with_itself():
    """Prompts of very different difficulty, each 0.025 better at each epoch: a comparison of steps sees the
    difficulty of what each step drew; pairing each prompt's first draw with its last sees the 0.05."""
    import random

    from scipy import stats

    from chimera.evaluation.report import paired_verdict, reward_change
    from chimera.training.grpo import paired_reward_change

    rng = random.Random(0)
    difficulty = {e: rng.uniform(0.2, 0.8) for e in range(32)}
    order = [e for _ in range(3) for e in rng.sample(range(32), 32)]  # three epochs, four prompts a step
    values = {(i // 4, e): difficulty[e] + 0.025 * (i // 32) + rng.gauss(0, 0.01) for i, e in enumerate(order)}
    weights = [0.05, 0.5, 0.1, 0.2, 0.15]
    paired = paired_reward_change(_log_rows(values), weights)
    assert paired["prompts"] == 32
    first = {e: min(s for s, x in values if x == e) for e in range(32)}
    last = {e: max(s for s, x in values if x == e) for e in range(32)}
    diffs = [(values[(last[e], e)] - values[(first[e], e)]) * sum(weights) for e in range(32)]  # every signal alike
    assert paired["reward"]["change"] == pytest.approx(sum(diffs) / 32)
    assert paired["reward"]["ci"] == pytest.approx(list(stats.ttest_1samp(diffs, 0).confidence_interval(0.95)))
    assert paired["perception_reward"]["change"] == pytest.approx(sum(diffs) / 32 / sum(weights))
    assert paired_verdict(paired) == "raised its reward"
    per_step = [sum(sum(weights) * v for (s, _), v in values.items() if s == step) / 4 for step in range(24)]
    assert reward_change(per_step, 5)["verdict"] == "did not move its reward beyond step-to-step noise"
    flat = {(s, e): v - 0.025 * (s // 8) for (s, e), v in values.items()}
    assert paired_verdict(paired_reward_change(_log_rows(flat), weights)) == \
        "did not move its reward beyond the prompts' own spread"


def test_paired_reward_change_leaves_out_steps_a_crash_cut_short():
    from chimera.training.grpo import paired_reward_change

    rows = _log_rows({(0, 0): 0.5, (0, 1): 0.5, (1, 0): 0.7, (1, 1): 0.9})
    cut = [r for r in rows if not (r["step"] == 1 and r["signal"] == "advice_reward")]  # died mid-step
    assert paired_reward_change(rows, [1, 0, 0, 0, 0])["reward"]["change"] == pytest.approx(0.3)
    assert paired_reward_change(cut, [1, 0, 0, 0, 0])["prompts"] == 0


def test_grpo_rejects_a_wrong_number_of_weights(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"6 weights \(format, perception, consistency, strategy, advice, grounding\)"):
        train_grpo(GRPORunConfig(base_model=tiny, output_dir=str(tmp_path), reward_weights=[1.0]), None)


# --------------------------------------------------------------------------------------------------
# Rewards on hand-made completions
# --------------------------------------------------------------------------------------------------

LABEL = example_analysis().model_dump(mode="json")


def completion(analysis: dict | str) -> list[dict]:
    text = analysis if isinstance(analysis, str) else json.dumps(analysis)
    return [{"role": "assistant", "content": text}]


def edited(**changes) -> dict:
    out = json.loads(json.dumps(LABEL))
    for path, value in changes.items():
        section, name = path.split("__")
        out[section][name] = value
    return out


def test_format_reward_is_dense():
    broken_state = edited(game_state__player_health="lots")
    scores = format_reward([completion(LABEL), completion(broken_state), completion("{ oops"), completion("no json")])
    assert scores[0] == 1.0
    assert scores[1] == pytest.approx(0.2 + 0.2 * 2)  # analysis and advice valid, game_state not
    assert scores[2] == pytest.approx(0.1) and scores[3] == 0.0
    assert format_reward([completion("```json\n" + to_json(example_analysis()) + "\n```")]) == [1.0]


def test_perception_reward_counts_fields_within_tolerance():
    label = json.dumps(LABEL)
    n = sum(v is not None for v in LABEL["game_state"].values())  # labelled fields: nulls are never credited
    perfect, near, wrong = perception_reward(
        [completion(LABEL), completion(edited(game_state__player_health=LABEL["game_state"]["player_health"] - 3)),
         completion(edited(game_state__player_health=5, game_state__weapon_primary="Nova"))], label=[label] * 3)
    assert perfect == 1.0 and near == 1.0  # health within +-5
    assert wrong == pytest.approx((n - 2) / n)
    # aliases are normalised, as in the evaluation
    alias = edited(game_state__weapon_primary="m4a1_silencer") if LABEL["game_state"]["weapon_primary"] == "M4A1-S" else LABEL
    assert perception_reward([completion(alias)], label=label) == [1.0]
    assert perception_reward([completion("prose")], label=label) == [0.0]
    assert perception_reward([completion(LABEL)], label=None) == [0.0]
    all_null = edited(**{f"game_state__{k}": None for k in LABEL["game_state"]})
    assert perception_reward([completion(all_null)], label=label) == [0.0]  # null labels earn nothing either


def test_consistency_reward_penalises_self_contradiction():
    rich_eco = edited(game_state__player_money=16000, analysis__economy_assessment="eco")
    good, bad = consistency_reward([completion(LABEL), completion(rich_eco)])
    assert good == 1.0 and bad < good
    # nothing checkable (the fields every rule reads left null): neutral, not the maximum
    silent = edited(analysis__economy_assessment="unknown", **{f"game_state__{k}": None for k in LABEL["game_state"]})
    assert all(v is None for v in consistency(silent).values())
    assert consistency_reward([completion(silent)]) == [0.5]


def test_strategy_reward_checks_economy_importance_and_odds():
    label = json.dumps(LABEL)
    a = LABEL["analysis"]
    other_eco = next(e for e in ("eco", "full-buy") if e != a["economy_assessment"])
    other_imp = next(i for i in ("low", "critical") if i != a["round_importance"])
    both_wrong = edited(analysis__economy_assessment=other_eco, analysis__round_importance=other_imp)
    right, wrong = strategy_reward([completion(LABEL), completion(both_wrong)], label=[label] * 2, p_win=[None] * 2)
    assert right - wrong == pytest.approx(0.7)
    assert strategy_reward([completion("nope")], label=label) == [0.0]


def test_advice_reward_wants_grounded_actionable_advice():
    label = json.dumps(LABEL)
    summary = LABEL["analysis"]["situation_summary"]
    copied = edited(advice__primary_action=summary)
    vague = edited(advice__primary_action="ok", advice__reasoning="because", advice__callout="")
    good, copy, bad = advice_reward([completion(LABEL), completion(copied), completion(vague)], label=[label] * 3)
    assert good > copy and good > bad
    assert good >= 0.7
    assert advice_reward([completion("not json")], label=label) == [0.0]


def test_grounding_reward_is_the_evaluations_grounding_and_silence_is_neutral():
    label = json.dumps(LABEL)
    gs = LABEL["game_state"]
    us, them = gs["alive_teammates"] + 1, gs["alive_enemies"]
    true = edited(analysis__situation_summary=f"{us}v{them}, ${gs['player_money']}", advice__reasoning="", advice__callout="")
    half = edited(analysis__situation_summary=f"{us}v{them}, ${gs['player_money'] + 900}", advice__reasoning="",
                  advice__callout="")
    silent = edited(analysis__situation_summary="Hold and wait", advice__reasoning="", advice__callout="")
    plan_only = edited(analysis__situation_summary="Hold and wait", advice__primary_action="Buy an AWP", advice__reasoning="",
                       advice__callout="")
    scores = grounding_reward([completion(a) for a in (true, half, silent, plan_only, LABEL)], label=[label] * 5)
    assert scores[:4] == [1.0, 0.5, 0.5, 0.5]  # a plan is no claim: "Buy an AWP" leaves the answer silent
    held, stated = grounding(LABEL, gs)
    assert scores[4] == held / stated  # the evaluation's own count
    assert grounding_reward([completion("not json")], label=label) == [0.0]
    assert grounding_reward([completion(LABEL)], label=None) == [0.0]


# --------------------------------------------------------------------------------------------------
# Learnability
# --------------------------------------------------------------------------------------------------

def test_overfit_loss_falls_well_below_its_start(tiny, tmp_path, screens):
    c = cfg(tiny, tmp_path, max_steps=40, logging_steps=5, save_steps=10**9)
    result = overfit(screens[:2], c, max_new_tokens=32)
    assert result["final_loss"] < 0.5 * result["first_loss"], result
    assert set(result["field_accuracy"]) >= {"player_health", "weapon_primary"}


def test_sft_targets_follow_the_schema_order_not_the_stored_key_order(screens):
    _, path, label = screens[0]
    stored = dict(sorted(label.items()))  # records are written with sorted keys: advice, analysis, game_state
    text = screen_dataset([(path, stored)])[0]["completion"][0]["content"][0]["text"]
    assert text.index('"game_state"') < text.index('"analysis"') < text.index('"advice"')
    assert json.loads(text) == json.loads(to_json(Analysis.model_validate(label)))


def test_every_trainer_takes_the_model_settings_users_override():
    """`-S model.quantization=4bit` and the pixel budget reach SFT, strategy pretraining and GRPO alike."""
    import dataclasses

    import yaml

    from chimera.training.settings import lora_settings, model_settings
    from chimera.training.sft import SFTRunConfig
    from conftest import ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    shared = {**lora_settings(params["train"]), **model_settings({**params["model"], "quantization": "4bit"})}
    for config in (SFTRunConfig, GRPORunConfig):
        made = config(base_model="m", output_dir="o", **shared)
        assert made.quantization == "4bit" and made.max_pixels == params["model"]["max_pixels"]
        assert made.gradient_checkpointing == params["train"]["gradient_checkpointing"]
        assert {f.name for f in dataclasses.fields(config)} >= set(shared)
    for stage in ("sft.py", "pretrain_strategy.py", "grpo.py"):
        assert "**model_settings(" in (ROOT / "stages" / stage).read_text()
