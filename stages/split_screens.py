"""Stage split_screens: labeled frames -> train / val / eval, frames of one video kept together; the real
screenshots a person read are eval."""

from _common import log, params


import pandas as pd

from chimera.io import read_parquet, write_parquet
from chimera.labeling.hand import LABELER
from chimera.review.flags import open_flag_ids
from chimera.screens.frames import load_manifests

p, seed = params("split"), params()["seed"]
frames = load_manifests(params("label")["manifests"])
labels = read_parquet("data/labeled/labels.parquet")
labeled = frames[frames.id.isin(labels[labels.valid].id)].copy()
# the real screenshots a person read are always eval, outside the shuffle and the split sizes: too few to train on,
# and the one check of reading a real HUD. Kept apart, they leave every other frame's split as it was
by_person = labeled.id.isin(labels[labels.model == LABELER].id)
read_by_person, labeled = labeled[by_person].assign(split="eval"), labeled[~by_person].copy()
# a video's frames are near each other in time: one group per video, one per still frame
labeled["group"] = labeled.apply(lambda r: r.origin if r.source == "video" else r.id, axis=1)
groups = labeled.group.drop_duplicates().sample(frac=1.0, random_state=seed).tolist()
assign, counts = {}, {"train": 0, "val": 0, "eval": 0}
for group in groups:
    size = int((labeled.group == group).sum())
    for split in ("eval", "val", "train"):
        if counts[split] + size <= p[split] or (split == "train" and counts["train"] < p["train"]):
            assign[group] = split
            counts[split] += size
            break
    else:
        assign[group] = "unused"
labeled["split"] = labeled.group.map(assign)
labeled = pd.concat([labeled, read_by_person], ignore_index=True)
# a label a reviewer flagged (chimera review --apply-flags) is never used silently while its flag is open
review = params("review")
flagged = labeled.id.isin(open_flag_ids(review["flags"]))
if review["flagged_labels"] == "exclude":
    labeled.loc[flagged, "split"] = "flagged"
elif flagged.any():
    log("split_screens").warning("%d flagged labels kept in their splits (review.flagged_labels: keep)", flagged.sum())
write_parquet("data/labeled/splits.parquet", labeled[["id", "path", "source", "width", "height", "split"]])
log("split_screens").info("%s", labeled.split.value_counts().to_dict())
