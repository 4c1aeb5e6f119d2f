"""Exploration of perception pretraining (the prototype loop behind BENCHMARKS.md "Perception pretraining"): the
tiny Qwen3-VL, the pipeline's renderer and the evaluation's scoring, with the levers as key=value arguments.

    python bench/explore_perception.py n=2000 steps=1500 short=1 view=crops2 lr=5e-4 eval_every=500
    python bench/explore_perception.py n=2000 steps=600 short=1 view=digits only=player_health lr=5e-4

view: full | full640 | crops | crops2 (the first HUD_VIEW) | top | vitals | money | moneybox | digits | solid | half | mix;
mix=x0:x1:field,...;x0:x1:field,...: frame i is task i % k, its anchored crop (y0-y1, vw x vhh) and those fields alone
(a mixed reading phase; accuracy per field over its task's frames);
moneybox: the money text cut to the renderer's own box (an oracle locator) and scaled to 28 px high on 192x32 black;
digits draws health 0-100 on black (128x32), or with dfield=player_money the sampled money, "$" included (dw x 32);
money: the money region (0-0.14 of the width, y0-y1 of the height, default 0.9-1.0) at vw x vhh;
style=1080p,scale,font,fontscale,clean,procedural: fix those factors of the sampled HUD style (an ablation; the
sampler has drawn no text size jitter since commit 5b654a6, so `fontscale` and the size part of `scale` reproduce
the recorded figures only at commit 4b8f2f1 or before);
pre=N: a curriculum, the first N of the steps on numbers drawn on black (as view=digits), the rest on the view;
with pre_style=..., the first N steps on the view rendered with those style factors fixed;
with view=mix and pre_mix=... (mix's format), the first N steps on those tasks;
lr and warmup (steps, default 20); vlr: the vision tower's learning rate as a multiple of lr (0 freezes it);
only=field,...: targets restricted to those fields; rare=field: half of each batch from the frames off that field's
most common value (health below 100); short=1: a short prompt instead of the research prompt;
vd/vh/th/tl: vision depth/width, text width/layers; at the end the model is also asked the research prompt
(FULLPROMPT line). The pipeline's trainer is chimera/training/perception.py; this script is kept so the
recorded figures can be rerun.
"""
import json, random, sys, time, math, os
from pathlib import Path
import torch
from PIL import Image
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.screens.hud import sample_state, sample_style, render_frame
from chimera.schema import GameState, Analysis, parse_model_output
from chimera.prompts import SYSTEM_PROMPT, USER_PROMPT
from chimera.vlm import models as M
from chimera.evaluation.metrics import score_frame, frame_value_accuracy, DEFAULT_TOLERANCES, LABELLED, field_hit

A = dict(a.split("=") for a in sys.argv[1:])
N = int(A.get("n", 600)); STEPS = int(A.get("steps", 300)); BS = int(A.get("bs", 8)); LR = float(A.get("lr", 2e-3))
VIEW = A.get("view", "crops"); VD = int(A.get("vd", 2)); VH = int(A.get("vh", 64)); TH = int(A.get("th", 128)); TL = int(A.get("tl", 2))
NEVAL = int(A.get("neval", 40)); SHORT = A.get("short", "0") == "1"; PATCH = int(A.get("patch", 16))
torch.manual_seed(0); torch.set_num_threads(2)
shots = Path(__file__).resolve().parent.parent / "data/raw/screenshots"
bgs = ["t2_chimera_gameplay_rifle.png", "t2_chimera_awp_holding.png", "neg_nohud_annotations_ancient2.jpg", "neg_nohud_annotations_inferno1.jpg", "t1_flxzz_dust2_knife_clean_hud.png"]

CROPS = {"vitals": ((0.0, 0.86, 0.5, 1.0), (512, 96)), "top": ((0.25, 0.0, 0.75, 0.12), (384, 64)),
         "inventory": ((0.70, 0.45, 1.0, 1.0), (320, 320))}
def views(img):
    if VIEW == "full":
        return [img.resize((448, 256))]
    if VIEW == "full640":
        return [img.resize((640, 352))]
    if VIEW == "vitals":
        W, H = img.size; return [img.crop((0, int(0.88 * H), int(0.48 * W), int(0.98 * H))).resize((int(A.get("vw", 1024)), int(A.get("vhh", 128))))]
    if VIEW == "money":
        W, H = img.size; y0, y1 = float(A.get("y0", 0.9)), float(A.get("y1", 1.0))
        return [img.crop((0, int(y0 * H), int(0.14 * W), int(y1 * H))).resize((int(A.get("vw", 224)), int(A.get("vhh", 64))))]
    if VIEW == "top":
        W, H = img.size; return [img.crop((int(0.25 * W), 0, int(0.75 * W), int(0.12 * H))).resize((384, 64))]
    if VIEW == "moneyscaled":  # the money region of view=money, scaled about the bottom-left corner with the HUD
        from chimera.vlm.views import View
        y0 = float(A.get("y0", 0.9))
        v = View(frame_size=None, crops={"money": ((float(A.get("x0", 0.0)), y0, float(A.get("x1", 0.14)), float(A.get("y1", 1.0))), (int(A.get("vw", 224)), int(A.get("vhh", 64))))}, anchors={"money": (0.0, 1.0)})
        crops = v.images(img)[1:]
        if A.get("mask") == "1":  # keep the HUD text's light pixels (white, buy-time green, low-health red), black the rest
            import numpy as np
            g = np.asarray(crops[0]).astype(int)
            light = (g.min(axis=2) > 140) | ((g[..., 1] > 160) & (g[..., 1] > g[..., 0] + 40)) | ((g[..., 0] > 180) & (g[..., 0] > g[..., 1] + 80))
            crops = [Image.fromarray((g * light[..., None]).astype("uint8"))]
        return crops
    if VIEW == "mix":  # frame i: task i % k of mix=x0:x1:field,...;... (anchored crops at y0-y1, vw x vhh)
        from chimera.vlm.views import View
        x0, x1, fields = MIX[len(ROW_FIELDS) % len(MIX)]
        anchor = tuple(float(a) for a in A.get("anchor", "0,1").split(","))  # anchor=1,1: scales about the bottom-right
        v = View(frame_size=None, crops={"c": ((x0, float(A.get("y0", 0.9333)), x1, float(A.get("y1", 0.9815))), (int(A.get("vw", 160)), int(A.get("vhh", 32))))}, anchors={"c": anchor})
        return v.images(img)[1:], fields
    if VIEW in ("pipeline", "pipeline_fixed"):  # the stage's HUD_VIEW; _fixed: its crops not following the HUD scale
        from dataclasses import replace
        from chimera.training.perception import HUD_VIEW
        return (replace(HUD_VIEW, anchors={}) if VIEW == "pipeline_fixed" else HUD_VIEW).images(img)
    if VIEW == "crops2":
        W, H = img.size
        boxes = [((0.0, 0.88, 0.48, 0.98), (512, 64)), ((0.28, 0.0, 0.72, 0.085), (384, 64)), ((0.74, 0.45, 1.0, 0.95), (192, 224))]
        return [img.resize((256, 160))] + [img.crop((int(x0 * W), int(y0 * H), int(x1 * W), int(y1 * H))).resize(sz) for (x0, y0, x1, y1), sz in boxes]
    out = [img.resize((320, 192))]
    for (x0, y0, x1, y1), size in CROPS.values():
        W, H = img.size
        out.append(img.crop((int(x0 * W), int(y0 * H), int(x1 * W), int(y1 * H))).resize(size))
    return out

STYLE = A.get("style")
MIX = [(float(t.split(":")[0]), float(t.split(":")[1]), t.split(":")[2].split(",")) for t in A.get("mix", "").split(";") if t]
ROW_FIELDS = {}

def render(seed0, n):
    rows = []
    for i in range(n):
        rng = random.Random(seed0 + i)
        state, extras = sample_state(rng)
        if VIEW != "digits":
            style = sample_style(rng, bgs)
            if STYLE:  # an ablation: fix the named style factors (e.g. style=1080p,scale,font,clean)
                from dataclasses import replace
                fixed = STYLE.split(",")
                style = replace(style, **({"width": 1920, "height": 1080} if "1080p" in fixed else {}),
                                **({"hud_scale": 1.0, "font_scale": 1.0} if "scale" in fixed else {}),
                                **({"font": "DejaVuSans-Bold.ttf"} if "font" in fixed else {}),
                                **({"font_scale": 1.0} if "fontscale" in fixed else {}),
                                **({"jpeg_quality": None, "blur": 0.0} if "clean" in fixed else {}),
                                **({"background": "procedural"} if "procedural" in fixed else {}))
            img, boxes = render_frame(state, extras, style, shots)
            if VIEW == "moneybox":  # the money text cropped to its box (the renderer's: an oracle locator), scaled
                x0, y0, x1, y1 = boxes["money"]  # to a fixed height on black: the HUD scale taken out
                pad = max(1, (y1 - y0) // 8)
                c = img.crop((max(0, x0 - pad), max(0, y0 - pad), x1 + pad, y1 + pad))
                c = c.resize((min(188, max(1, round(c.width * 28 / c.height))), 28))
                canvas = Image.new("RGB", (192, 32)); canvas.paste(c, (2, 2))
                rows.append(([canvas], state)); continue
        if VIEW == "digits":
            from PIL import ImageDraw, ImageFont
            if A.get("dfield") == "player_money":  # a money value as the HUD samples it, "$" included, on black
                img = Image.new("RGB", (int(A.get("dw", 192)), 32)); d = ImageDraw.Draw(img)
                d.text((4 + rng.randint(0, 20), 2), f"${state.player_money}", font=ImageFont.truetype("DejaVuSans-Bold.ttf", 26), fill=(255, 255, 255))
                rows.append(([img], state)); continue
            img = Image.new("RGB", (128, 32)); d = ImageDraw.Draw(img); state = state.model_copy(update={"player_health": rng.randint(0, 100)})
            d.text((4 + rng.randint(0, 20), 2), str(state.player_health), font=ImageFont.truetype("DejaVuSans-Bold.ttf", 26), fill=(255, 255, 255))
            rows.append(([img], state)); continue
        if VIEW == "solid":
            img = Image.new("RGB", (256, 128), (90, 140, 220) if state.player_side == "CT" else (220, 160, 60))
            rows.append(([img], state)); continue
        if VIEW == "half":
            img = Image.new("RGB", (256, 128), (90, 140, 220)); img.paste((220, 160, 60), (0, 0, 128, 128) if state.player_side == "CT" else (128, 0, 256, 128))
            rows.append(([img], state)); continue
        if VIEW == "mix":  # each row reads its own task's fields (ROW_FIELDS, keyed by the row's state)
            imgs, fields = views(img)
            ROW_FIELDS[id(state)] = fields
            rows.append((imgs, state)); continue
        rows.append((views(img), state))
    return rows

t0 = time.time()
train = render(10_000_000, N); test = render(20_000_000, NEVAL)
PRE = int(A.get("pre", 0))  # a curriculum: the first PRE steps read numbers drawn on black (view=digits), then the view
if PRE and "pre_mix" in A:  # ...or (view=mix) the pre_mix tasks, e.g. money alone before money and health mixed
    MIX, _mix = [(float(t.split(":")[0]), float(t.split(":")[1]), t.split(":")[2].split(",")) for t in A["pre_mix"].split(";")], MIX
    pre_rows = render(30_000_000, N)
    MIX = _mix
elif PRE and "pre_style" in A:  # ...or the same view rendered with the pre_style factors fixed
    STYLE, _style = A["pre_style"], STYLE
    pre_rows = render(30_000_000, N)
    STYLE = _style
elif PRE:
    VIEW, _view = "digits", VIEW
    pre_rows = render(30_000_000, 2000)
    VIEW = _view
print(f"render {N+NEVAL}: {time.time()-t0:.1f}s", flush=True)

from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen2VLImageProcessor
tok = M.build_tokenizer(M.tokenizer_corpus(), 2000); tpl = M.qwen3vl_chat_template(); tok.chat_template = tpl
ids = {k: tok.convert_tokens_to_ids(t) for k, t in (("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"), ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
hd = 32
text = dict(vocab_size=len(tok), hidden_size=TH, intermediate_size=2*TH, num_hidden_layers=TL, num_attention_heads=TH//hd, num_key_value_heads=max(1, TH//hd//2), head_dim=hd, max_position_embeddings=4096,
            rope_scaling={"rope_type": "default", "mrope_section": [8, 4, 4], "mrope_interleaved": True}, rope_theta=5_000_000.0, tie_word_embeddings=False)
vision = dict(depth=VD, hidden_size=VH, intermediate_size=2*VH, num_heads=max(1, VH//32), out_hidden_size=TH, patch_size=PATCH, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=1024, deepstack_visual_indexes=[0])
cfg = Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **ids)
cfg.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>"); cfg.pad_token_id = tok.pad_token_id
model = Qwen3VLForConditionalGeneration(cfg)
print("params", sum(p.numel() for p in model.parameters()) / 1e6, "M")
ip = Qwen2VLImageProcessor(patch_size=PATCH, temporal_patch_size=2, merge_size=2, size={"shortest_edge": 8192, "longest_edge": 640 * 360}, image_mean=[0.5]*3, image_std=[0.5]*3)
proc = M._image_only_processor_class()(image_processor=ip, tokenizer=tok, chat_template=tpl)
SYS = "Read the HUD. Answer with the game_state JSON." if SHORT else SYSTEM_PROMPT

def msgs(n_img):
    return [{"role": "system", "content": [{"type": "text", "text": SYS}]},
            {"role": "user", "content": [{"type": "image"}] * n_img + [{"type": "text", "text": USER_PROMPT}]}]

ONLY = A.get("only")
def target(state):
    if id(state) in ROW_FIELDS:
        d = state.model_dump(mode="json"); return json.dumps({"game_state": {k: d[k] for k in ROW_FIELDS[id(state)]}}, separators=(",", ":"))
    if ONLY:
        d = state.model_dump(mode="json"); return json.dumps({"game_state": {k: d[k] for k in ONLY.split(",")}}, separators=(",", ":"))
    return json.dumps({"game_state": state.model_dump(mode="json")}, separators=(",", ":"))

def encode(imgs, state):
    prompt = proc.apply_chat_template(msgs(len(imgs)), add_generation_prompt=True, tokenize=False)
    enc = proc(text=[prompt], images=imgs, return_tensors="pt")
    ans = tok(target(state) + "<|im_end|>", add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    ids_ = torch.cat([enc["input_ids"][0], ans])
    lab = torch.cat([torch.full_like(enc["input_ids"][0], -100), ans])
    mm = torch.cat([enc["mm_token_type_ids"][0], torch.zeros_like(ans)])
    return ids_, lab, enc["pixel_values"], enc["image_grid_thw"], mm

t0 = time.time()
enc = [encode(v, s) for v, s in train]
pre_enc = [encode(v, s) for v, s in pre_rows] if PRE else []
print(f"encode: {time.time()-t0:.1f}s; seq len {enc[0][0].shape[0]}, answer {int((enc[0][1]!=-100).sum())}, pix {enc[0][2].shape}", flush=True)

def collate(batch):
    L = max(b[0].shape[0] for b in batch)
    mm = torch.zeros((len(batch), L), dtype=torch.long)
    ids_ = torch.full((len(batch), L), tok.pad_token_id); lab = torch.full((len(batch), L), -100); att = torch.zeros((len(batch), L), dtype=torch.long)
    for i, b in enumerate(batch):
        n = b[0].shape[0]; ids_[i, :n] = b[0]; lab[i, :n] = b[1]; att[i, :n] = 1; mm[i, :n] = b[4]
    return dict(input_ids=ids_, labels=lab, attention_mask=att, pixel_values=torch.cat([b[2] for b in batch]), image_grid_thw=torch.cat([b[3] for b in batch]), mm_token_type_ids=mm)

def evaluate(rows):
    model.eval(); proc.tokenizer.padding_side = "left"
    accs, valid, per = [], 0, {}
    for j in range(0, len(rows), 8):
        chunk = rows[j:j+8]
        prompts = [proc.apply_chat_template(msgs(len(v)), add_generation_prompt=True, tokenize=False) for v, _ in chunk]
        inp = proc(text=prompts, images=[im for v, _ in chunk for im in v], return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(**inp, max_new_tokens=200, do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=cfg.eos_token_id)
        texts = tok.batch_decode(out[:, inp["input_ids"].shape[1]:], skip_special_tokens=True)
        for t, (_, s) in zip(texts, chunk):
            pr = parse_model_output(t)
            gs = pr.game_state_fields()
            ok = False
            try: GameState.model_validate(json.loads(t)["game_state"]); ok = True
            except Exception: pass
            valid += ok
            truth = {"analysis": {"game_state": s.model_dump(mode="json"), "analysis": {}, "advice": {}}}
            fake = {"analysis": None, "raw_text": t}
            sc = score_frame("x", fake, truth, DEFAULT_TOLERANCES)
            accs.append(frame_value_accuracy(sc))
            for n, o in sc.outcomes.items():
                if o in LABELLED and n in ROW_FIELDS.get(id(s), [n]): per.setdefault(n, []).append(field_hit(sc, n))
    model.train(); proc.tokenizer.padding_side = "right"
    import numpy as np
    return float(np.nanmean(accs)), valid / len(rows), {k: round(float(np.mean(v)), 2) for k, v in per.items()}, texts[0]

VLR = float(A.get("vlr", 1.0))
vis = [p_ for n_, p_ in model.named_parameters() if ".visual." in n_ or n_.startswith("visual") or "model.visual" in n_]
vis_ids = {id(p_) for p_ in vis}
rest = [p_ for p_ in model.parameters() if id(p_) not in vis_ids]
print("vision params", sum(p_.numel() for p_ in vis))
opt = torch.optim.AdamW([{"params": rest, "lr": LR}, {"params": vis, "lr": LR * VLR}], lr=LR, weight_decay=0.0)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s+1)/int(A.get('warmup', 20))) * 0.5 * (1 + math.cos(math.pi * min(s, STEPS) / STEPS)))
RARE = []
if "rare" in A:  # rare=player_health: oversample the frames off the field's mode (health below 100)
    from collections import Counter
    values = [getattr(state, A["rare"]) for _, state in train]
    mode = Counter(values).most_common(1)[0][0]
    RARE = [e for e, v, (_, st) in zip(enc, values, train) if v != mode and A["rare"] in ROW_FIELDS.get(id(st), [A["rare"]])]
    print(f"rare: {len(RARE)} of {len(enc)} frames off {A['rare']} = {mode}")
model.train(); g = random.Random(0); t0 = time.time()
for step in range(1, STEPS + 1):
    if RARE and step > PRE:  # half of each batch from the frames whose `rare` field is off its most common value
        n_rare = BS // int(A.get("rare_share", 2))  # rare_share=4: a quarter of each batch
        batch = collate(g.sample(RARE, n_rare) + g.sample(enc, BS - n_rare))
    else:
        batch = collate(g.sample(pre_enc if step <= PRE else enc, BS))
    loss = model(**batch).loss
    loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); sched.step(); opt.zero_grad()
    if step % 25 == 0:
        print(f"step {step} loss {loss.item():.3f} {(time.time()-t0)/step:.2f}s/step", flush=True)
    if step % int(A.get("eval_every", 10**9)) == 0 or step == STEPS:
        te = time.time(); acc, val, per, ex = evaluate(test)
        print(f"EVAL step {step}: acc {acc:.3f} valid {val:.2f} ({time.time()-te:.0f}s) {per}\n  {ex[:300]}", flush=True)
print(f"total {time.time()-t0:.0f}s")
SYS = SYSTEM_PROMPT
acc, val, per, ex = evaluate(test)
print(f"FULLPROMPT: acc {acc:.3f} valid {val:.2f} {per}\n  {ex[:300]}", flush=True)
if "save" in A:
    model.save_pretrained(A["save"]); proc.save_pretrained(A["save"])
