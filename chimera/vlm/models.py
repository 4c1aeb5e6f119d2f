"""Model presets: one code path for a tiny local Qwen3-VL (CPU, no download) and real hub models.

`tiny`: a Qwen3-VL built from a small config, with a byte-level BPE tokenizer trained on Chimera's own
text (prompts, schema, CS2 vocabulary), Qwen's special tokens in Qwen's order and the real Qwen3-VL chat
template. Deterministic and saved with `save_pretrained`, so it loads through the same `from_pretrained`
path as `Qwen/Qwen3-VL-8B-Instruct`.

torchvision cannot be installed on the CPU machines, and Qwen3VLProcessor's video processor needs it:
`load_processor` tries AutoProcessor and falls back to a processor without the video part (images + text).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

TINY = "tiny"
QWEN_SPECIAL_TOKENS = [  # Qwen2/2.5/3-VL order: ids follow the base vocabulary in this order
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
    "<think>", "</think>",
]
QWEN_SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                      r"\s*[\r\n]+|\s+(?!\S)|\s+")


class ModelUnavailableError(RuntimeError):
    """A model that would need a download on a machine that cannot make it."""


@dataclass
class ModelConfig:
    name: str = TINY                      # "tiny", a hub id, or a local folder
    tiny_path: str = "models/tiny-qwen3vl"
    quantization: str | None = None       # None | "4bit" (NF4 through bitsandbytes)
    attn_implementation: str = "sdpa"     # sdpa | flash_attention_2 (when installed) | eager
    dtype: str = "auto"                   # auto: bf16 on GPU, fp32 on CPU
    min_pixels: int = 64 * 32 * 32
    max_pixels: int = 448 * 252           # visual tokens dominate cost: bound the image size
    patch_embed_as_linear: bool = False   # the vision patch embedding run as the linear layer it is (load_model)

    @property
    def path(self) -> str:
        return self.tiny_path if self.name == TINY else self.name

    @classmethod
    def from_params(cls, model: dict, **override) -> "ModelConfig":
        """params.yaml's `model` section (its keys that are fields here), then `override` (e.g. name=a folder)."""
        return cls(**{**{k: v for k, v in model.items() if k in cls.__dataclass_fields__}, **override})


# --------------------------------------------------------------------------------------------------
# The tiny model
# --------------------------------------------------------------------------------------------------

def tokenizer_corpus() -> list[str]:
    """Chimera's own text: prompts, schema, weapon/utility names, strategist phrasing, numbers."""
    from chimera.prompts import PROBE_QUESTIONS, SYSTEM_PROMPT, USER_PROMPT
    from chimera.schema import UTILITY, WEAPONS, analysis_json_schema, example_analysis
    from chimera.screens.hud import MAPS

    texts = [SYSTEM_PROMPT, USER_PROMPT, json.dumps(analysis_json_schema()), *PROBE_QUESTIONS.values(),
             example_analysis().model_dump_json(), example_analysis().model_dump_json(indent=2)]
    texts += [" ".join([name, *row[-1]]) for name, row in {**WEAPONS, **UTILITY}.items()]
    texts += [" ".join(places) + " " + m for m, places in MAPS.items()]
    texts += [" ".join(str(n) for n in range(0, 16001, 50))]
    # analyses from the strategist over sampled states: the words labels are made of
    import random

    from chimera.screens.hud import sample_state
    from chimera.strategist import Context, analyse

    rng = random.Random(0)
    for _ in range(300):
        state, extras = sample_state(rng)
        a, adv = analyse(state, Context(round_num=extras.round_num, p_win=rng.random()))
        texts.append(json.dumps({"game_state": state.model_dump(mode="json"), "analysis": a.model_dump(mode="json"),
                                 "advice": adv.model_dump(mode="json")}))
    return texts


def build_tokenizer(texts: list[str], vocab_size: int = 2000):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer)
    state = json.loads(bpe.to_str())
    vocab = dict(state["model"]["vocab"])
    for token in QWEN_SPECIAL_TOKENS:  # Qwen's order: consecutive ids right after the base vocabulary
        vocab[token] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["model"]["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token="<|im_end|>",
                               pad_token="<|endoftext|>", clean_up_tokenization_spaces=False)
    tokenizer.add_special_tokens({"additional_special_tokens": [t for t in QWEN_SPECIAL_TOKENS
                                                               if t not in ("<|endoftext|>", "<|im_end|>")]})
    return tokenizer


def qwen3vl_chat_template() -> str:
    from trl.chat_template_utils import qwen3_vl_chat_template

    return qwen3_vl_chat_template


def tiny_config(tokenizer, image_token_ids: dict[str, int]):
    from transformers import Qwen3VLConfig

    head_dim = 32
    text = dict(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=head_dim, max_position_embeddings=4096,
                rope_scaling={"rope_type": "default", "mrope_section": [8, 4, 4], "mrope_interleaved": True},
                rope_theta=5_000_000.0, tie_word_embeddings=False)
    vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=128, patch_size=16,
                  spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=256, deepstack_visual_indexes=[0])
    return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **image_token_ids)


def build_tiny_model(out_dir: str | Path, seed: int = 0, vocab_size: int = 2000) -> Path:
    """Build, save and return the folder of the tiny Qwen3-VL (a few MB, deterministic)."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLForConditionalGeneration

    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(tokenizer_corpus(), vocab_size)
    template = qwen3vl_chat_template()
    tokenizer.chat_template = template
    ids = {k: tokenizer.convert_tokens_to_ids(t) for k, t in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    config = tiny_config(tokenizer, ids)
    config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = [config.eos_token_id, tokenizer.pad_token_id]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = False
    image_processor = Qwen2VLImageProcessor(patch_size=16, temporal_patch_size=2, merge_size=2,
                                            size={"shortest_edge": 64 * 32 * 32, "longest_edge": 448 * 252},
                                            image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    processor = _image_only_processor_class()(image_processor=image_processor, tokenizer=tokenizer,
                                              chat_template=template)
    return save_model_folder(model, processor, out_dir)


def resized_tiny_model(tiny_path: str, out_dir: str | Path, change, seed: int = 0) -> tuple[Path, object, int]:
    """The tiny model at `tiny_path` with its config changed by `change(config, processor)` and its weights freshly
    initialised at `seed`; its tokenizer, processor and generation config kept (the size experiments of bench/).
    Returns the saved folder, the changed config and the parameter count."""
    from transformers import AutoConfig, GenerationConfig, Qwen3VLForConditionalGeneration

    tiny = ModelConfig(name=tiny_path)  # the processor as load_model gives it, without loading the model too
    processor = load_processor(tiny.path, tiny.min_pixels, tiny.max_pixels)
    config = AutoConfig.from_pretrained(tiny_path)
    change(config, processor)
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig.from_pretrained(tiny_path)  # its stop and pad tokens
    return save_model_folder(model, processor, out_dir), config, sum(p.numel() for p in model.parameters())


def save_model_folder(model, processor, out_dir: str | Path) -> Path:
    """Save model + processor into a temp folder, then swap it in: a crash never leaves half a model."""
    import shutil

    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    # record the stock class: with torchvision (GPU machines) AutoProcessor then builds the real processor
    config_path = tmp / "processor_config.json"
    if config_path.exists():
        saved = json.loads(config_path.read_text())
        saved["processor_class"] = "Qwen3VLProcessor"
        config_path.write_text(json.dumps(saved, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------

def _image_only_processor_class():
    from transformers import Qwen3VLProcessor

    class ImageOnlyQwen3VLProcessor(Qwen3VLProcessor):
        """Qwen3VLProcessor without its video processor (which needs torchvision): text + images."""

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                             chat_template=chat_template, **kwargs)

    return ImageOnlyQwen3VLProcessor


def __getattr__(name):  # lazy: the class needs transformers, which is slow to import
    if name == "ImageOnlyQwen3VLProcessor":
        return _image_only_processor_class()
    raise AttributeError(name)


BASE_REDIRECT = "chimera_base.json"  # a folder standing for another model: {"name": hub id or folder, "why": ...}


def redirect(name: str, out: str | Path, why: str) -> None:
    """Make `out` a folder that stands for the model `name` (a hub id or a folder), saying why."""
    from chimera.io import atomic_write_text

    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    atomic_write_text(out / BASE_REDIRECT, json.dumps({"name": name, "why": why}, indent=2) + "\n")


def ensure_local(name: str) -> str:
    """A local folder, or a hub id already cached; otherwise a clear error instead of a hanging download. A folder
    holding only a redirect (the skipped perception stage on the 8B path) stands for the model it names."""
    redirect = Path(name) / BASE_REDIRECT
    if redirect.is_file():
        return ensure_local(json.loads(redirect.read_text())["name"])
    if Path(name).is_dir():
        return name
    if name == TINY:
        raise ModelUnavailableError("the tiny model is not built yet: run `dvc repro build_tiny_model`")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - any miss means "not cached"
        pass
    if _meant_as_folder(name):  # "models/perception" before `dvc repro`: not a hub id to download
        raise ModelUnavailableError(
            f"{name}: no such model folder. The pipeline's models are DVC outputs: `dvc repro` builds them (`dvc repro "
            f"pretrain_perception` the base alone) and `dvc pull` fetches them from a remote; a hub model goes there "
            f"with `hf download ORG/NAME --local-dir {name}`")
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not _hub_reachable():
        raise ModelUnavailableError(
            f"{name}: not in the local Hugging Face cache and the hub cannot be reached (offline?). "
            f"On a connected machine run `huggingface-cli download {name}`, or use model.name: tiny.")
    return name


def _meant_as_folder(name: str) -> bool:
    """A hub id is `org/name`; a path that starts like one on disk (`./x`, `/x`, `~/x`), has more parts, or whose
    first part is a folder here (`models/perception`) means a local folder."""
    parts = Path(name).expanduser().parts
    return (name.startswith((".", "/", "~")) or len(parts) > 2
            or (len(parts) == 2 and Path(parts[0]).is_dir()))


def _hub_reachable(timeout_s: float = 5.0) -> bool:
    import httpx

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        httpx.head(endpoint, timeout=timeout_s)
        return True
    except httpx.HTTPError:
        return False


def load_processor(path: str, min_pixels: int | None = None, max_pixels: int | None = None):
    from transformers import AutoProcessor, Qwen2VLImageProcessor, AutoTokenizer

    try:
        processor = AutoProcessor.from_pretrained(path)
        if not hasattr(processor, "image_processor"):  # AutoProcessor may settle for the bare tokenizer
            raise ValueError("no image processor")
    except (ImportError, ValueError, TypeError, OSError, AttributeError):
        tokenizer = AutoTokenizer.from_pretrained(path)
        image_processor = Qwen2VLImageProcessor.from_pretrained(path)
        processor = _image_only_processor_class()(image_processor=image_processor, tokenizer=tokenizer,
                                                 chat_template=tokenizer.chat_template)
    from chimera.vlm.views import VIEW_FILE, fit_processor, load_view

    if (Path(path) / VIEW_FILE).is_file():  # the model's own view sizes its images
        fit_processor(processor, load_view(path))
    elif min_pixels or max_pixels:
        size = dict(processor.image_processor.size)
        if min_pixels:
            size["shortest_edge"] = min_pixels
        if max_pixels:
            size["longest_edge"] = max_pixels
        processor.image_processor.size = size
    processor.tokenizer.padding_side = "left"
    return processor


def load_model(config: ModelConfig, device: str | None = None, for_training: bool = False):
    """(model, processor) for a preset; bf16 on GPU, fp32 on CPU, optional 4-bit NF4."""
    from transformers import Qwen3VLForConditionalGeneration

    path = ensure_local(config.path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = {"auto": torch.bfloat16 if device == "cuda" else torch.float32, "bf16": torch.bfloat16,
             "fp32": torch.float32, "fp16": torch.float16}[config.dtype]
    kwargs = {"dtype": dtype, "attn_implementation": config.attn_implementation}
    if config.patch_embed_as_linear and config.quantization is None:
        # The vision patch embedding is a Conv3d whose stride is its kernel: a linear layer over each patch. Run as one
        # (transformers' own fusion; checkpoints load and save in the Conv3d layout), a perception-pretraining step
        # takes 0.21-0.23 s against 0.27-0.31: the convolution's weight gradient was a fifth of the step. The sums
        # differ in the last bits, and over 3,300 steps that is another draw of the base (60.6% held out against
        # that machine's base, 68.4%), so it is off unless asked for (BENCHMARKS.md, "eighth round"). Not under
        # 4-bit, where bitsandbytes would quantize the new linear layer.
        kwargs["fusion_config"] = {"patch_embeddings": True}
    if config.quantization == "4bit":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if device == "cuda" else torch.float32)
        kwargs["device_map"] = {"": device if device != "cuda" else 0}
    model = Qwen3VLForConditionalGeneration.from_pretrained(path, **kwargs)
    if config.quantization != "4bit":
        model = model.to(device)
    if not for_training:
        model.eval()
    return model, load_processor(path, config.min_pixels, config.max_pixels)
