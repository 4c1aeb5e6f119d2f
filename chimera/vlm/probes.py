"""Zero-shot probes: single questions per field ("what weapon?", "how much money?") over a set of frames,
answers normalised and compared with the labels, to tell systematic perception errors from random ones."""

from __future__ import annotations

import re
from collections import Counter

from chimera.io import readable_images
from chimera.prompts import PROBE_QUESTIONS
from chimera.schema import canonical_weapon
from chimera.vlm.backends import LocalBackend


def normalise_answer(field: str, text: str):
    text = (text or "").strip()
    if field in ("player_money", "player_health", "alive_enemies"):
        match = re.search(r"\d[\d,]*", text)
        return int(match.group().replace(",", "")) if match else None
    if field == "player_side":
        upper = text.upper()
        return "CT" if "CT" in upper or "COUNTER" in upper else "T" if re.search(r"\bT\b|TERROR", upper) else None
    if field == "weapon_primary":
        return canonical_weapon(text.split("\n")[0].strip(" .")) if text else None
    return text


def probe_messages(images, question: str) -> list[dict]:
    """One question about a frame shown as the model's view (a list of images), or as one image."""
    images = images if isinstance(images, list) else [images]
    return [{"role": "user", "content": [{"type": "image", "image": im} for im in images] + [
        {"type": "text", "text": question}]}]


def run_probes(model, processor, frames, labels, max_new_tokens: int = 16) -> dict:
    import json

    backend = LocalBackend(model, processor, "probe", batch_size=4, max_new_tokens=max_new_tokens, constrained=False)
    truth = {r.id: json.loads(json.dumps({k[3:]: getattr(r, k) for k in labels.columns if k.startswith("gs_")}))
             for r in labels.itertuples()}
    rows = []
    for field, question in PROBE_QUESTIONS.items():
        for frame, image in readable_images(list(frames.itertuples()), path_of=lambda f: f.path):
            text = backend.generate([probe_messages(backend.view.images(image), question)])[0][0]
            answer = normalise_answer(field, text)
            expected = truth.get(frame.id, {}).get(field)
            rows.append({"id": frame.id, "field": field, "raw": text, "answer": answer, "truth": expected,
                         "correct": answer == expected})
    fields = {}
    for field in PROBE_QUESTIONS:
        # the one accuracy (chimera.evaluation.metrics): only frames whose label has a value count
        mine = [r for r in rows if r["field"] == field and r["truth"] is not None]
        wrong = Counter(str(r["answer"]) for r in mine if not r["correct"])
        fields[field] = {"n": len(mine), "accuracy": sum(r["correct"] for r in mine) / len(mine) if mine else None,
                         "top_wrong": wrong.most_common(1)[0][0] if wrong else None,
                         "top_wrong_share": (wrong.most_common(1)[0][1] / max(1, sum(wrong.values()))) if wrong else 0.0}
    return {"fields": fields, "answers": rows}
