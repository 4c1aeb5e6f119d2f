"""Schema-constrained decoding (llguidance) on the tiny Qwen3-VL: every answer is a valid Analysis."""

import json
import time

import pytest
from PIL import Image

from chimera.schema import (Analysis, DECODING_LIMITS, decoding_json_schema, decoding_token_bound, example_analysis,
                            parse_model_output, to_json)
from chimera.vlm.backends import LocalBackend
from chimera.vlm.models import ModelConfig, build_tiny_model, load_model


@pytest.fixture(scope="module")
def random_tiny(tmp_path_factory):
    return load_model(ModelConfig(name=str(build_tiny_model(tmp_path_factory.mktemp("m") / "tiny")), max_pixels=160 * 96))


def frames(tmp_path, n=3):
    out = []
    for i in range(n):
        path = tmp_path / f"f{i}.png"
        Image.new("RGB", (320, 180), (60 * i, 90, 160)).save(path)
        out.append((f"f{i}", str(path)))
    return out


def test_decoding_schema_accepts_the_training_format_and_bounds_every_string_and_list():
    import llguidance

    from chimera.vlm.constrained import _grammar, ll_tokenizer
    from chimera.vlm.models import load_processor

    schema = decoding_json_schema()
    game_state = schema["properties"]["game_state"]
    assert game_state["required"] == list(game_state["properties"])  # every field written, null allowed
    texts = json.dumps(schema)
    assert texts.count('"maxLength"') == len(DECODING_LIMITS["text_chars"]) + len(DECODING_LIMITS["list_items"]) - 1
    # the compact JSON the trainers teach (to_json) is inside the grammar, token by token
    processor = load_processor(str(build_tiny_model("/tmp/chimera-test-tiny")))
    matcher = llguidance.LLMatcher(ll_tokenizer(processor.tokenizer, len(processor.tokenizer)), _grammar())
    for token in processor.tokenizer(to_json(example_analysis()), add_special_tokens=False)["input_ids"]:
        assert matcher.consume_token(token), matcher.get_error()
    assert matcher.is_accepting()
    # a field out of range is not
    bad = to_json(example_analysis()).replace('"player_health":76', '"player_health":760')
    matcher = llguidance.LLMatcher(ll_tokenizer(processor.tokenizer, len(processor.tokenizer)), _grammar())
    assert not all(matcher.consume_token(t) for t in processor.tokenizer(bad, add_special_tokens=False)["input_ids"])


def test_a_random_model_constrained_always_answers_a_valid_analysis(random_tiny, tmp_path):
    free = LocalBackend(*random_tiny, constrained=False, max_new_tokens=64).analyze(frames(tmp_path))
    assert not any(p.parse.schema_valid for p in free)  # without constraints a random model writes noise
    t0 = time.perf_counter()
    bound = LocalBackend(*random_tiny, batch_size=3).analyze(frames(tmp_path))
    for p in bound:
        assert p.parse.schema_valid, (p.raw_text[:200], p.parse.errors, p.parse.warnings)
        Analysis.model_validate_json(p.raw_text)  # the raw text itself, not a repair of it
        assert p.output_tokens <= decoding_token_bound()
    assert time.perf_counter() - t0 < 120


def test_truncation_under_constraints_is_a_valid_prefix_counted_invalid(random_tiny, tmp_path):
    backend = LocalBackend(*random_tiny, batch_size=3)
    backend.max_new_tokens = 40  # cut below the bound on purpose (the backend never does this itself)
    for p in backend.analyze(frames(tmp_path)):
        assert p.raw_text.startswith('{"game_state":{"map_name":')
        assert not p.parse.schema_valid
        assert any(w.startswith("closed") for w in p.parse.warnings) or not p.parse.ok
    assert LocalBackend(*random_tiny, max_new_tokens=40).max_new_tokens == decoding_token_bound()
