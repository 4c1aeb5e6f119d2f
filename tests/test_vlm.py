"""The VLM layer on a tiny Qwen3-VL built locally (random weights, locally trained tokenizer)."""

import hashlib
import json

import httpx
import pytest
from PIL import Image

from conftest import ROOT

from chimera.prompts import SYSTEM_PROMPT, USER_PROMPT
from chimera.schema import decoding_json_schema, example_analysis, json_object_closed, to_json
from chimera.vlm.backends import LocalBackend, OpenAICompatBackend
from chimera.vlm.inference import frames_left, model_fingerprint, run_inference
from chimera.vlm.models import ModelConfig, ModelUnavailableError, build_tiny_model, ensure_local, load_model
from chimera.vlm.probes import normalise_answer


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def loaded(tiny):
    return load_model(ModelConfig(name=str(tiny), max_pixels=160 * 90 * 4))


def images(tmp_path, sizes=((320, 180), (640, 360), (160, 90))):
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"img{i}.png"
        Image.new("RGB", size, (40 * i, 100, 200 - 30 * i)).save(path)
        paths.append((f"id{i}", str(path)))
    return paths


def test_tiny_model_is_deterministic_and_round_trips(tiny, tmp_path, loaded):
    again = build_tiny_model(tmp_path / "again")
    digest = lambda p: hashlib.sha256((p / "model.safetensors").read_bytes()).hexdigest()  # noqa: E731
    assert digest(again) == digest(tiny)
    assert (again / "tokenizer.json").read_text() == (tiny / "tokenizer.json").read_text()
    model, processor = loaded
    assert model.config.model_type == "qwen3_vl"
    assert sum(p.numel() for p in model.parameters()) < 3_000_000
    tok = processor.tokenizer
    ids = tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]  # Qwen's special-token order
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert "<|im_start|>assistant" in processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], add_generation_prompt=True, tokenize=False)
    # saving and loading again gives the same generations
    model.save_pretrained(tmp_path / "saved")
    processor.save_pretrained(tmp_path / "saved")
    reloaded = load_model(ModelConfig(name=str(tmp_path / "saved"), max_pixels=160 * 90 * 4))
    imgs = images(tmp_path)[:1]
    a = LocalBackend(*loaded, max_new_tokens=12, constrained=False).analyze(imgs)[0].raw_text
    b = LocalBackend(*reloaded, max_new_tokens=12, constrained=False).analyze(imgs)[0].raw_text
    assert a == b and a


def test_patch_embedding_runs_as_one_linear_layer_with_the_convolutions_results(tiny, tmp_path, loaded):
    """load_model's fused patch embedding: the Conv3d's outputs and weight gradient, saved in the Conv3d layout."""
    import torch
    from safetensors import safe_open
    from transformers import Qwen3VLForConditionalGeneration

    fused, _ = load_model(ModelConfig(name=str(tiny), patch_embed_as_linear=True))
    assert isinstance(loaded[0].model.visual.patch_embed.proj, torch.nn.Conv3d)  # the default: transformers' Conv3d
    conv = Qwen3VLForConditionalGeneration.from_pretrained(str(tiny), dtype=torch.float32)
    assert isinstance(conv.model.visual.patch_embed.proj, torch.nn.Conv3d)
    linear = fused.model.visual.patch_embed.linear_proj
    assert isinstance(linear, torch.nn.Linear) and not hasattr(fused.model.visual.patch_embed, "proj")
    patches = torch.randn(12, linear.in_features, generator=torch.Generator().manual_seed(0))
    outputs = [m.model.visual.patch_embed(patches) for m in (conv, fused)]
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-6)
    for out in outputs:
        out.square().sum().backward()
    gradients = conv.model.visual.patch_embed.proj.weight.grad, linear.weight.grad
    torch.testing.assert_close(gradients[1], gradients[0].reshape(gradients[1].shape), rtol=1e-4, atol=1e-4)
    fused.zero_grad()
    fused.save_pretrained(tmp_path / "saved")
    with safe_open(str(tmp_path / "saved" / "model.safetensors"), "pt") as saved:
        assert saved.get_tensor("model.visual.patch_embed.proj.weight").shape == (linear.out_features, 3, 2, 16, 16)


def test_batched_and_one_by_one_greedy_outputs_match(loaded, tmp_path):
    frames = images(tmp_path)
    batched = LocalBackend(*loaded, batch_size=3, max_new_tokens=16, constrained=False).analyze(frames)
    single = LocalBackend(*loaded, batch_size=1, max_new_tokens=16, constrained=False).analyze(frames)
    assert [p.id for p in batched] == ["id0", "id1", "id2"]  # input order kept despite sorting by size
    assert [p.raw_text for p in batched] == [p.raw_text for p in single]
    assert all(p.output_tokens > 0 for p in batched)


def test_corrupt_and_empty_images_fail_only_their_frame(loaded, tmp_path):
    frames = images(tmp_path, sizes=((160, 90),))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    frames += [("empty", str(tmp_path / "empty.png")), ("corrupt", str(tmp_path / "corrupt.png"))]
    out = LocalBackend(*loaded, max_new_tokens=8, constrained=False).analyze(frames)
    assert [p.id for p in out] == ["id0", "empty", "corrupt"]
    assert out[0].error is None and out[0].raw_text is not None
    assert out[1].error.endswith("empty.png: unreadable image: empty file")  # the file is named, not a hash
    assert "corrupt.png: unreadable image" in out[2].error
    assert out[2].record("m")["analysis"] is None and out[2].record("m")["errors"] and out[2].record("m")["failed"]


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    """A 1 KB PNG that declares 100,000 x 100,000 pixels is refused from its header: no decoding, no memory."""
    import struct
    import zlib

    from chimera.io import open_image

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
                     + chunk(b"IEND", b""))
    with pytest.raises(ValueError, match="bomb.png: unreadable image: .*refused before decoding"):
        open_image(bomb)  # PIL's header check answers first at this size
    header = struct.pack(">IIBBBBB", 10_000, 8_000, 8, 2, 0, 0, 0)  # 80 MP: ours (50 MP) refuses it
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
                     + chunk(b"IEND", b""))
    with pytest.raises(ValueError, match="bomb.png: unreadable image: 10000x8000 pixels is above the limit of"):
        open_image(bomb)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ValueError, match="dir.png: unreadable image: IsADirectoryError"):
        open_image(tmp_path / "dir.png")


def test_resume_skips_finished_ids(loaded, tmp_path, tiny):
    frames = images(tmp_path)
    backend = LocalBackend(*loaded, max_new_tokens=8, constrained=False)
    fingerprint = model_fingerprint(str(tiny))
    first = run_inference(backend, frames, tmp_path / "pred", fingerprint, tmp_path / "pred.parquet")
    assert (first["predicted"], first["skipped"]) == (3, 0)
    second = run_inference(backend, frames, tmp_path / "pred", fingerprint, tmp_path / "pred.parquet")
    assert (second["predicted"], second["skipped"]) == (0, 3)
    (tmp_path / "pred" / "id1.json").unlink()
    third = run_inference(backend, frames, tmp_path / "pred", fingerprint)
    assert (third["predicted"], third["skipped"]) == (1, 2)
    other_model = run_inference(backend, frames, tmp_path / "pred", "another-model@123")
    assert other_model["predicted"] == 3


def test_resume_key_covers_decoding_and_pixels_and_retries_failures(loaded, tmp_path, tiny):
    """`dvc exp run -S infer.max_new_tokens=...` must predict again; a failed frame is never done; the cache
    outside the output survives the output being wiped (as `dvc repro` does)."""
    frames = images(tmp_path, sizes=((160, 90),))  # id0 is good; "empty" and "corrupt" fail
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    frames += [("empty", str(tmp_path / "empty.png")), ("corrupt", str(tmp_path / "corrupt.png"))]
    backend = LocalBackend(*loaded, max_new_tokens=8, constrained=False)
    kwargs = dict(cache_dir=tmp_path / "cache")
    first = run_inference(backend, frames, tmp_path / "out", "m@1", **kwargs)
    assert (first["predicted"], first["failed"]) == (3, 2)
    import shutil

    shutil.rmtree(tmp_path / "out")
    again = run_inference(backend, frames, tmp_path / "out", "m@1", **kwargs)
    assert (again["skipped"], again["predicted"]) == (1, 2)  # the good frame resumed, the failures retried
    assert sorted(p.name for p in (tmp_path / "out").glob("*.json")) == ["corrupt.json", "empty.json", "id0.json"]
    longer = LocalBackend(*loaded, max_new_tokens=16, constrained=False)  # as `chimera infer --max-new-tokens 16`: no settings passed
    again_longer = run_inference(longer, frames, tmp_path / "out", "m@1", cache_dir=tmp_path / "cache")
    assert again_longer["skipped"] == 0 and again_longer["run_key"] != first["run_key"]
    # constrained decoding and the model's view change answers, so they are in the key too
    bound = LocalBackend(*loaded, max_new_tokens=8).settings
    assert bound["constrained"] and not backend.settings["constrained"] and bound["view"] == backend.settings["view"]


def test_worker_processes_fill_the_cache_with_the_answers_one_process_gives(loaded, tmp_path, tiny):
    """infer.workers: two one-thread processes predict their shares of every run (here two decoding settings, as
    the infer stage's constrained and free runs) into the resume cache, loading the model once each; the runs that
    follow predict nothing and their answers are the single process's."""
    from dataclasses import asdict

    from chimera.vlm.inference import predict_in_workers

    frames = images(tmp_path, sizes=((320, 180), (640, 360), (160, 90), (320, 180), (160, 90)))
    kwargs = {"batch_size": 2, "max_new_tokens": 12, "constrained": False}
    config = ModelConfig(name=str(tiny), max_pixels=160 * 90 * 4)
    shorter = {**kwargs, "max_new_tokens": 6}
    settings = {"workers": 2}
    done = []
    predict_in_workers(asdict(config), "tiny", [(kwargs, frames), (shorter, frames[:3])], 2, "m@1", settings,
                       tmp_path / "cache", progress=done.append)
    assert sorted(done) == [3, 5]  # frames dealt round-robin (3 + 2 and 2 + 1), each share reported when its worker ends
    backend = LocalBackend(*loaded, **kwargs)
    counts = run_inference(backend, frames, tmp_path / "out", "m@1", settings=settings, cache_dir=tmp_path / "cache")
    assert (counts["skipped"], counts["predicted"]) == (5, 0)
    short = run_inference(LocalBackend(*loaded, **shorter), frames[:3], tmp_path / "short", "m@1", settings=settings,
                          cache_dir=tmp_path / "cache")
    assert (short["skipped"], short["predicted"]) == (3, 0) and short["run_key"] != counts["run_key"]
    single = run_inference(backend, frames, tmp_path / "single", "m@1", cache_dir=tmp_path / "single-cache")
    assert single["predicted"] == 5
    from chimera.records import load_records

    workers, one = load_records(tmp_path / "out"), load_records(tmp_path / "single")
    assert {i: r["raw_text"] for i, r in workers.items()} == {i: r["raw_text"] for i, r in one.items()}
    assert not list((tmp_path / "cache" / "_shards").iterdir())  # job files and scratch outputs cleaned up
    # what the infer stage asks before it starts workers: every frame of both runs is finished, a new setting has all
    assert frames_left(backend, frames, "m@1", settings, tmp_path / "cache") == []
    assert frames_left(LocalBackend(*loaded, **shorter), frames, "m@1", settings, tmp_path / "cache") == frames[3:]
    assert frames_left(backend, frames, "m@1", {"workers": 1}, tmp_path / "cache") == frames


def test_the_infer_stage_starts_workers_only_for_enough_frames_and_decodes_the_rest_as_a_worker_would(tmp_path, tiny):
    """A few frames left (a run resumed, a handful of new frames) are decoded in the stage's own process on one thread,
    under the workers' run key, with the answers the workers give; enough frames start the workers."""
    from dataclasses import asdict

    import shutil
    import subprocess
    import sys

    import pandas as pd
    import yaml

    from chimera.records import load_records
    from chimera.vlm.inference import MIN_FRAMES_FOR_WORKERS, predict_in_workers, workers_worth_starting

    assert [workers_worth_starting(n, 2) for n in (MIN_FRAMES_FOR_WORKERS - 1, MIN_FRAMES_FOR_WORKERS)] == [1, 2]
    assert workers_worth_starting(500, 1) == 1
    # a project holding the stage, its params and an eval split of four frames
    project = tmp_path / "project"
    (project / "stages").mkdir(parents=True)
    for script in ("infer.py", "_common.py"):
        shutil.copy(ROOT / "stages" / script, project / "stages" / script)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"]["max_pixels"] = params["model"]["min_pixels"]
    params["infer"].update(batch_size=2, max_new_tokens=12, constrained=False, workers=2)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    frames = images(tmp_path, sizes=((320, 180), (640, 360), (160, 90), (320, 180)))
    (project / "data" / "labeled").mkdir(parents=True)
    pd.DataFrame({"id": [i for i, _ in frames], "path": [str(p) for _, p in frames], "split": "eval"}).to_parquet(
        project / "data" / "labeled" / "splits.parquet")
    done = subprocess.run([sys.executable, "stages/infer.py", "tiny", str(tiny)], cwd=project, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "workers)" not in done.stderr  # no worker started: the progress bar of the workers never showed
    counts = json.loads((project / "data" / "predictions" / "tiny" / "_run.json").read_text())
    assert counts["predicted"] == len(frames)
    # what the workers give for the same frames, settings and model, under the same run key
    config = ModelConfig.from_params(params["model"], name=str(tiny))
    kwargs = {"batch_size": 2, "max_new_tokens": 12, "constrained": False}
    settings = {"attn_implementation": config.attn_implementation, "workers": 2}
    predict_in_workers(asdict(config), "tiny", [(kwargs, frames)], 2, model_fingerprint(str(tiny)), settings,
                       tmp_path / "workers")
    by_workers = run_inference(LocalBackend(*load_model(config), **kwargs), frames, tmp_path / "w",
                               model_fingerprint(str(tiny)), settings=settings, cache_dir=tmp_path / "workers")
    assert by_workers["skipped"] == len(frames) and by_workers["run_key"] == counts["run_key"]
    assert ({i: r["raw_text"] for i, r in load_records(tmp_path / "w").items()}
            == {i: r["raw_text"] for i, r in load_records(project / "data" / "predictions" / "tiny").items()})


def test_claude_as_a_model_never_reads_the_labeling_cache(tmp_path):
    from chimera.labeling.claude import ClaudeConfig, ClaudeLabeler
    from chimera.vlm.backends import ClaudeBackend

    with pytest.raises(ValueError, match="without a cache"):
        ClaudeBackend(ClaudeLabeler(ClaudeConfig(), tmp_path / "cache"))
    assert ClaudeBackend(ClaudeLabeler(ClaudeConfig(), cache_dir=None)).labeler.cache_dir is None


def test_generation_stops_at_the_end_of_the_json_object():
    assert json_object_closed('Sure: {"a": {"b": "}"}} and more')
    assert not json_object_closed('{"a": {"b": 1}')
    assert not json_object_closed('{"a": "}')
    assert not json_object_closed("no json here }")


def chat_completion(content, usage=(1200, 300)):
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1763950000, "model": "Qwen/Qwen3-VL-8B-Instruct",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}}


def test_openai_compatible_backend_against_chat_completions(tmp_path):
    seen = []

    def handler(request: httpx.Request):
        body = json.loads(request.content)
        seen.append((request, body))
        if "id2" in request.headers.get("x-test", "") or len(seen) == 3:
            return httpx.Response(500, json={"object": "error", "message": "CUDA out of memory", "code": 500})
        return httpx.Response(200, json=chat_completion(f"```json\n{to_json(example_analysis())}\n```"))

    slept = []
    backend = OpenAICompatBackend("http://vllm.test/v1", "Qwen/Qwen3-VL-8B-Instruct", concurrency=1,
                                  http_client=httpx.Client(transport=httpx.MockTransport(handler)), sleep=slept.append)
    out = backend.analyze(images(tmp_path))
    request, body = seen[0]
    assert request.url == "http://vllm.test/v1/chat/completions"
    assert body["model"] == "Qwen/Qwen3-VL-8B-Instruct" and body["temperature"] == 0
    assert body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    parts = body["messages"][1]["content"]
    assert parts[0]["type"] == "image_url" and parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[1] == {"type": "text", "text": USER_PROMPT}
    # vLLM's guided decoding gets the local backend's decoding schema (llguidance's formatting hint left out)
    assert body["response_format"]["json_schema"]["schema"] == {
        k: v for k, v in decoding_json_schema().items() if k != "x-guidance"}
    assert out[0].parse.ok and out[0].parse.analysis == example_analysis()
    assert (out[0].input_tokens, out[0].output_tokens) == (1200, 300)
    assert all(p.error is None for p in out) and len(seen) == 4 and len(slept) == 1  # the 500 was retried once


def test_openai_compatible_backend_retries_storms_honours_retry_after_and_gives_up_clearly(tmp_path):
    """429/5xx storms and timeouts are retried with backoff; retry-after wins; 400 is final; a broken body is
    that frame's error, never a crash of the batch."""
    script = {"storm": [httpx.Response(429, headers={"retry-after": "7"}), httpx.Response(503),
                        httpx.Response(200, json=chat_completion(to_json(example_analysis())))],
              "down": [httpx.Response(500)] * 10, "bad": [httpx.Response(400, json={"message": "bad image"})],
              "html": [httpx.Response(200, text="<html>gateway</html>")], "timeout": ["timeout", "timeout",
              httpx.Response(200, json=chat_completion(to_json(example_analysis())))]}
    calls = {k: 0 for k in script}

    def handler(request: httpx.Request):
        name = request.headers["x-case"]
        answer = script[name][min(calls[name], len(script[name]) - 1)]
        calls[name] += 1
        if answer == "timeout":
            raise httpx.ReadTimeout("read timed out", request=request)
        return answer

    slept = []
    results = {}
    for name in script:
        backend = OpenAICompatBackend("http://vllm.test/v1", "m", concurrency=1, max_retries=3, sleep=slept.append,
                                      http_client=httpx.Client(transport=httpx.MockTransport(handler),
                                                               headers={"x-case": name}))
        results[name] = backend.analyze(images(tmp_path, sizes=((64, 36),)))[0]
    assert results["storm"].parse.ok and calls["storm"] == 3 and 7.0 in slept
    assert results["timeout"].parse.ok and calls["timeout"] == 3
    assert calls["down"] == 4 and "500" in results["down"].error  # 1 try + 3 retries, then a clear error
    assert calls["bad"] == 1 and "400" in results["bad"].error
    assert calls["html"] == 1 and results["html"].error.startswith("server error")
    assert max(slept) <= 30.0


def test_hub_model_offline_is_a_clear_error_not_a_hang(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="Qwen/Qwen3-VL-8B-Instruct: not in the local Hugging Face cache"):
        ensure_local("Qwen/Qwen3-VL-8B-Instruct")
    with pytest.raises(ModelUnavailableError, match="build_tiny_model"):
        ensure_local("tiny")


def test_a_resized_tiny_model_takes_the_change_keeps_the_processor_and_is_fresh_at_its_seed(tiny, tmp_path):
    """resized_tiny_model (the size experiments of bench/): the changed config is what is saved and loads, the
    tokenizer and processor are the tiny model's own, and the same seed draws the same fresh weights."""
    from chimera.vlm.models import load_processor, resized_tiny_model

    def wider_vision(config, processor):
        config.vision_config.hidden_size, config.vision_config.intermediate_size = 128, 256
        config.vision_config.num_heads = 4
        processor.image_processor.patch_size = config.vision_config.patch_size = 8

    folder, config, parameters = resized_tiny_model(str(tiny), tmp_path / "a", wider_vision)
    model, processor = load_model(ModelConfig(name=str(folder)))
    assert (model.config.vision_config.hidden_size, model.config.vision_config.patch_size) == (128, 8)
    assert processor.image_processor.patch_size == 8
    assert parameters == sum(p.numel() for p in model.parameters()) > sum(
        p.numel() for p in load_model(ModelConfig(name=str(tiny)))[0].parameters())
    assert processor.tokenizer.get_vocab() == load_processor(str(tiny)).tokenizer.get_vocab()
    again, _, _ = resized_tiny_model(str(tiny), tmp_path / "b", wider_vision)
    other, _, _ = resized_tiny_model(str(tiny), tmp_path / "c", wider_vision, seed=1)
    weights = {name: hashlib.md5((f / "model.safetensors").read_bytes()).hexdigest() for name, f in
               (("a", folder), ("b", again), ("c", other))}
    assert weights["a"] == weights["b"] != weights["c"]


def test_a_missing_model_folder_says_how_the_pipeline_builds_it_not_how_to_download_it(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads HF_HOME when it is imported (an earlier test may have done it): set its cache folder
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # a checkout before `dvc repro`: models/ exists, models/perception does not
    for name in ("models/perception", "./perception", str(tmp_path / "models" / "sft" / "B")):
        with pytest.raises(ModelUnavailableError, match="no such model folder.*dvc repro") as raised:
            ensure_local(name)
        assert "huggingface-cli" not in str(raised.value)
    with pytest.raises(ModelUnavailableError, match="not in the local Hugging Face cache"):
        ensure_local("Qwen/Qwen3-VL-8B-Instruct")  # no folder Qwen here: still a hub id
    # a hub id in the Hugging Face cache is that model, even beside a folder named like its organisation
    cached = tmp_path / "hf" / "hub" / "models--Qwen--Qwen3-VL-8B-Instruct"
    (cached / "snapshots" / "abc123").mkdir(parents=True)
    (cached / "refs").mkdir()
    (cached / "refs" / "main").write_text("abc123")
    (tmp_path / "Qwen").mkdir()
    assert ensure_local("Qwen/Qwen3-VL-8B-Instruct") == str(cached / "snapshots" / "abc123")


@pytest.mark.parametrize("field,text,expected", [
    ("player_money", "$4,550", 4550), ("player_money", "I can't tell", None), ("player_health", "69 HP", 69),
    ("player_side", "Counter-Terrorist", "CT"), ("player_side", "T side", "T"),
    ("weapon_primary", "m4a1_silencer.", "M4A1-S"), ("weapon_primary", "AK47\nThe player holds", "AK-47"),
])
def test_probe_answers_are_normalised(field, text, expected):
    assert normalise_answer(field, text) == expected


def test_image_size_bounds_visual_tokens(tiny):
    _, small = load_model(ModelConfig(name=str(tiny), max_pixels=224 * 126))
    _, large = load_model(ModelConfig(name=str(tiny), max_pixels=448 * 252))
    image = Image.new("RGB", (1920, 1080))
    n = lambda p: p.image_processor(images=[image], return_tensors="pt")["image_grid_thw"].prod().item() // 4  # noqa: E731
    assert n(small) < n(large) <= 448 * 252 // (32 * 32) + 1
