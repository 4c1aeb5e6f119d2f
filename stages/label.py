"""Stage label: every frame in the manifests -> one Analysis record per frame id + labels.parquet.

Backend `auto`: frames with exact truth (synthetic, synthetic clip) get the truth labeler; real frames paired with
GSI get its state, the real screenshots a person read (label.hand_labels) get those numbers; the others go to
Claude when ANTHROPIC_API_KEY is set. Frames no backend can label are listed in unlabeled.json.
"""

from _common import log, params

import json
from pathlib import Path

import joblib
from tqdm import tqdm

from chimera.gsi import gsi_labels_for
from chimera.io import CLAUDE_CACHE, set_max_image_pixels, write_json
from chimera.labeling.claude import ClaudeConfig, ClaudeLabeler, MissingKeyError, api_key
from chimera.labeling.hand import hand_label, read_hand_labels
from chimera.labeling.truth import truth_label
from chimera.records import write_records
from chimera.screens.frames import load_manifests

set_max_image_pixels(params("screens")["max_image_pixels"])  # docs/errors.md: bombs refused

p = params("label")
logger = log("label")
frames = load_manifests(p["manifests"])
winprob = joblib.load(p["winprob_model"]) if Path(p["winprob_model"]).exists() else None
records, unlabeled = [], []
use_truth = p["backend"] in ("auto", "truth")
with_truth = frames[frames.truth.notna()] if use_truth else frames.iloc[:0]
for row in tqdm(list(with_truth.itertuples()), desc="truth labels", unit="frame"):
    extras = json.loads(row.meta).get("extras", {})
    records.append({**truth_label(row.id, row.truth, extras, winprob), "source": row.source})
rest = frames[~frames.id.isin(with_truth.id)]
# real frames paired with the game's own state (chimera gsi-label): exact game_state, no Claude call for them
gsi = gsi_labels_for(rest.id, p["gsi_labels"]) if p["backend"] == "auto" else {}
source_of = dict(zip(rest.id, rest.source))
records += [{**record, "source": source_of[i]} for i, record in gsi.items()]
rest = rest[~rest.id.isin(gsi)]
# real screenshots a person read (data/hand_labels): the HUD numbers they could read, nothing more; a frame with
# nothing readable is no label
hand, unreadable = {}, []
if p["hand_labels"] and p["backend"] == "auto":
    read_by_file = read_hand_labels(p["hand_labels"])
    for row in rest.itertuples():
        read = read_by_file.get(json.loads(row.meta or "{}").get("file"))
        if read is None:
            continue
        record = {**hand_label(row.id, read), "source": row.source}
        if record["known_fields"]:
            hand[row.id] = record
        else:
            unreadable.append({"id": row.id, "path": row.path, "reason": "a person could read no number on it"})
records += hand.values()
unlabeled += unreadable
rest = rest[~rest.id.isin(hand) & ~rest.id.isin([u["id"] for u in unreadable])]
metrics = {"backend": p["backend"], "truth_labels": len(records) - len(gsi) - len(hand), "gsi_labels": len(gsi),
           "hand_labels": len(hand)}
if len(rest) and p["backend"] in ("auto", "claude"):
    try:
        api_key()
        config = ClaudeConfig(**p["claude"])
        labeler = ClaudeLabeler(config, CLAUDE_CACHE)
        # a frame chosen by its video's subtitles carries the transcript around it: passed as commentary
        items = [(row.id, Path(row.path).read_bytes(), json.loads(row.meta or "{}").get("transcript") or None)
                 for row in rest.itertuples()]
        with tqdm(total=len(items), desc="claude labels", unit="frame") as bar:
            run = labeler.label_batch(items) if p["claude_mode"] == "batch" else labeler.label_many(items, bar.update)
        source = dict(zip(rest.id, rest.source))
        records += [{**r, "source": source.get(r["id"])} for r in run.records]
        path_of = dict(zip(rest.id, rest.path))
        unlabeled += [{"id": f["id"], "path": path_of.get(f["id"]), "reason": f["error"]} for f in run.failures]
        for f in run.failures:  # docs/errors.md: one line per bad item, naming its file
            logger.warning("%s: not labelled: %s", path_of.get(f["id"]), f["error"])
        metrics["claude"] = run.totals()
        print(f"Claude: {len(run.records)} labels, {run.cached} from cache, ${metrics['claude']['cost_usd']:.4f} spent")
    except MissingKeyError as exc:
        logger.warning("%s", str(exc).split(":")[0] + ": frames without truth stay unlabeled")
        unlabeled += [{"id": i, "reason": "no truth and no ANTHROPIC_API_KEY"} for i in rest.id]
else:
    unlabeled += [{"id": i, "reason": f"backend {p['backend']} cannot label it"} for i in rest.id]
write_records("data/labeled/labels", records, "data/labeled/labels.parquet")
write_json("data/labeled/unlabeled.json", unlabeled)
metrics.update(labeled=len(records), unlabeled=len(unlabeled))
write_json("metrics/labeling.json", metrics)
logger.info("%d labeled, %d unlabeled (listed in data/labeled/unlabeled.json)", len(records), len(unlabeled))
if not records:  # docs/errors.md: non-zero when nothing usable came out
    raise SystemExit("label: no frame could be labelled; data/labeled/unlabeled.json says why")
