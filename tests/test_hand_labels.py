"""The real screenshots a person read: the labels say what the pixels show, and the evaluation scores a frame on the
fields its label vouches for and nothing else."""

import csv
from pathlib import Path

import numpy as np
import pytest

from chimera.labeling.hand import FIELDS, hand_label, read_hand_labels
from chimera.schema import GAME_STATE_FIELDS, example_analysis
from conftest import ROOT

HAND_LABELS = ROOT / "data" / "hand_labels" / "real_screenshots.csv"


def test_a_persons_numbers_are_what_ocr_reads_off_the_pixels(shared):
    """Every number RapidOCR reads confidently where the real CS2 HUD draws it equals the person's label, over
    enough readings that agreement is not vacuous; a frame labelled as having no HUD is one its source says hides
    the HUD, and OCR finds no health or armor on it."""
    from PIL import Image

    from chimera.evaluation.ocr import REAL_CS2_REGIONS, OcrConfig, read_hud

    screenshots = shared / "data" / "screenshots"
    with open(screenshots / "manifest.csv", newline="") as fh:
        notes = {row["file"]: row["notes"] for row in csv.DictReader(fh)}
    config = OcrConfig(regions=dict(REAL_CS2_REGIONS), det_min_side=256)
    checked = 0
    for file, row in read_hand_labels(HAND_LABELS).items():
        assert file in notes, f"{file}: not a shared screenshot"
        record = hand_label(file, row)
        read = read_hud(Image.open(screenshots / file).convert("RGB"), config)
        if not row["hud"]:
            assert "HUD hidden" in notes[file]
            assert all(read[f]["value"] is None for f in ("player_health", "player_armor")), (file, read)
            continue
        for name in record["known_fields"]:
            if read[name]["confidence"] >= 0.9:
                assert read[name]["value"] == record["analysis"]["game_state"][name], (file, name, read[name])
                checked += 1
    assert checked >= 12


def test_a_hand_label_vouches_for_what_was_read_and_a_hidden_hud_for_every_null():
    rows = read_hand_labels(HAND_LABELS)
    clean = hand_label("a", rows["t1_ctdetector_3.jpg"])
    assert clean["known_fields"] == ["player_money", "player_health", "player_armor"]
    assert {f: clean["analysis"]["game_state"][f] for f in FIELDS} == {"player_money": 550, "player_health": 1,
                                                                         "player_armor": 69}
    assert clean["analysis_assessed"] is False and clean["analysis"]["analysis"]["economy_assessment"] == "unknown"
    # $96,049 on a community server: more than the schema holds, so the label does not vouch for money
    community = hand_label("b", rows["t1_flxzz_dust2_knife_clean_hud.png"])
    assert "player_money" not in community["known_fields"] and community["analysis"]["game_state"]["player_money"] is None
    hidden = hand_label("c", rows["neg_nohud_annotations_mirage1.jpg"])
    assert hidden["known_fields"] == list(GAME_STATE_FIELDS)
    assert all(v is None for v in hidden["analysis"]["game_state"].values())
    assert hand_label("d", rows["t2_chimera_round_start.png"])["known_fields"] == []  # nothing read: the stage drops it


@pytest.mark.parametrize("row, problem", [
    ("x.png,maybe,1,2,3,", "x.csv:3: hud must be yes or no"),
    ("x.png,yes,12k,,,", "x.csv:3: player_money must be a whole number or blank, not '12k'"),
    ("x.png,no,800,,,", "x.csv:3: a frame without a HUD shows no number"),
    ("a.png,yes,1,,,", "x.csv:3: a.png is labelled twice"),
])
def test_a_bad_row_is_named_by_file_and_line(tmp_path, row, problem):
    path = tmp_path / "x.csv"
    path.write_text("file,hud,player_money,player_health,player_armor,note\na.png,yes,100,,,\n" + row + "\n")
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        read_hand_labels(path)
    (tmp_path / "y.csv").write_text("file,money\n")
    with pytest.raises(ValueError, match="y.csv: missing columns"):
        read_hand_labels(tmp_path / "y.csv")


def test_a_frame_is_scored_on_the_fields_its_label_vouches_for_and_nothing_else(tmp_path):
    """A person read money alone: the model's health (right or wrong) and its nulls elsewhere are in no count, its
    analysis is not judged, its self-consistency still is. The same label vouching for every field would score the
    nulls as null handling and the analysis against 'unknown'."""
    from chimera.evaluation.metrics import frame_rows, score_frame, summarise
    from chimera.schema import Analysis, GameState, unassessed, to_json

    answer = example_analysis().model_dump(mode="json")
    answer["game_state"].update(player_money=3100, player_health=1, player_armor=None, team_money_total=None)
    prediction = {"analysis": answer, "raw_text": to_json(Analysis.model_validate(answer))}
    read = {"analysis": unassessed(GameState(player_money=3100)).model_dump(mode="json"),
            "known_fields": ["player_money"], "analysis_assessed": False}
    score = score_frame("f", prediction, read, {})
    assert [n for n, o in score.outcomes.items() if o != "unassessed"] == ["player_money"]
    row = frame_rows([score])[0]
    assert row["value_accuracy"] == 1.0 and np.isnan(row["analysis_accuracy"]) and np.isnan(row["grounding"])
    assert np.isnan(row["field:player_health"]) and not np.isnan(row["consistency"])
    summary = summarise([score])
    assert summary["null_handling"]["null_labels"] == 0 and summary["null_handling"]["labelled_values"] == 1
    assert summary["fields"]["player_armor"]["null_when_null"] is None
    assert summary["fields"]["utility"]["f1"]["value"] != summary["fields"]["utility"]["f1"]["value"]  # nan: none
    assert summary["analysis"]["economy_assessment"]["value"] != summary["analysis"]["economy_assessment"]["value"]

    from chimera.evaluation.plots import write_plots  # the evaluate stage's plots take such a frame too

    assert write_plots(summary, [score], tmp_path, "m")

    vouching = {"analysis": read["analysis"]}  # the same numbers from a labeler that vouches for every field
    whole = summarise([score_frame("f", prediction, vouching, {})])
    assert whole["null_handling"]["null_labels"] == len(GAME_STATE_FIELDS) - 1
    assert whole["analysis"]["economy_assessment"]["value"] == 0.0


def test_grounding_checks_only_the_facts_a_label_vouches_for():
    """A GSI label knows the weapons and not the alive counts: an answer's "5v3" is not checked against its null
    alive counts (which would make every XvX claim false), its AK-47 is."""
    from chimera.evaluation.metrics import grounding, score_frame
    from chimera.schema import Analysis, GameState, to_json

    answer = example_analysis().model_dump(mode="json")
    answer["analysis"]["situation_summary"] = "5v3 with an AK-47"
    answer["advice"]["reasoning"] = answer["advice"]["callout"] = ""
    state = GameState(weapon_primary="AK-47", player_money=2000).model_dump(mode="json")
    assert grounding(answer, state) == (1, 2)  # a labeler vouching for every field: the XvX is false
    known = ["weapon_primary", "weapon_secondary", "player_money"]
    assert grounding(answer, state, known) == (1, 1)
    gsi = {"analysis": {**answer, "game_state": state}, "known_fields": known}
    assert score_frame("f", {"analysis": answer, "raw_text": to_json(Analysis.model_validate(answer))}, gsi,
                       {}).grounded == (1, 1)
