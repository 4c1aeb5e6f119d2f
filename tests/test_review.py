"""`chimera review`: the page's judgements (from the evaluation's own scoring) and, in headless Chromium, keys,
flags, filters, the flags export, and untrusted text that must stay text."""

from __future__ import annotations

import copy
import json
import os
import random
import time

import pytest

from chimera.evaluation.metrics import DEFAULT_TOLERANCES
from chimera.labeling.truth import truth_label
from chimera.review.browser import INSTALL, chromium, find_chromium, serve
from chimera.review.flags import apply_flags, open_flag_ids, read_flags_export
from chimera.review.page import review_items, write_review
from chimera.screens.hud import Style, extras_dict, png_bytes, render_frame, sample_state

PAYLOADS = ['<img src=x onerror="window.__pwned=1">', '</script><script>window.__pwned=2</script>',
            'javascript:window.__pwned=3', '\u202eevil.exe\u202c txt', '"><svg onload=window.__pwned=4>']


def make_set(folder, n=6):
    """n rendered frames, their exact labels, and two models: `close` (money off by 50: within tolerance; health
    exact) and `xss` (wrong armor, every text a payload; its map name too)."""
    frames, labels, close, xss = [], {}, {}, {}
    for seed in range(n):
        state, extras = sample_state(random.Random(seed))
        image, _ = render_frame(state, extras, Style(width=320, height=180, seed=seed))
        path = folder / f"f{seed}.png"
        path.write_bytes(png_bytes(image))
        fid = f"frame{seed}"
        frames.append({"id": fid, "path": str(path), "source": "synthetic" if seed % 2 else "real"})
        labels[fid] = truth_label(fid, state.model_dump_json(), extras_dict(extras))
        good = copy.deepcopy(labels[fid]["analysis"])
        if good["game_state"]["player_money"] is not None:
            good["game_state"]["player_money"] += 50
        close[fid] = {"id": fid, "analysis": good, "schema_valid": True}
        bad = copy.deepcopy(labels[fid]["analysis"])
        bad["game_state"]["player_armor"] = 0 if bad["game_state"]["player_armor"] else 100
        bad["game_state"]["map_name"] = PAYLOADS[0]
        for part, names in (("analysis", ("situation_summary",)), ("advice", ("primary_action", "reasoning",
                                                                              "fallback", "callout"))):
            for k, name in enumerate(names):
                bad[part][name] = PAYLOADS[(seed + k) % len(PAYLOADS)]
        bad["analysis"]["immediate_threats"] = PAYLOADS
        if seed >= 3:  # only later frames disagree: filters have something to separate
            xss[fid] = {"id": fid, "analysis": bad, "schema_valid": True}
        else:
            xss[fid] = {"id": fid, "analysis": copy.deepcopy(labels[fid]["analysis"]), "schema_valid": True}
    return frames, labels, {"close": close, "xss": xss}


def test_judgements_come_from_the_evaluations_scoring(tmp_path):
    frames, labels, preds = make_set(tmp_path, n=4)
    preds["close"].pop("frame1")
    items = {i["id"]: i for i in review_items(frames, labels, preds, DEFAULT_TOLERANCES, tmp_path)}
    f0 = items["frame0"]
    assert f0["img"] == "f0.png"  # relative to the page
    assert f0["models"]["close"]["verdicts"]["player_money"] == ("tolerant" if labels["frame0"]["analysis"]
                                                                ["game_state"]["player_money"] is not None else "agree")
    assert f0["models"]["close"]["verdicts"]["player_health"] == "agree"
    assert items["frame1"]["models"]["close"] == {"missing": True}
    f3 = items["frame3"]
    assert f3["models"]["xss"]["verdicts"]["player_armor"] == "disagree"
    assert "player_armor" in f3["disagree"] and f3["worst"] < 1
    assert items["frame0"]["disagree"] == [] or "player_money" not in items["frame0"]["disagree"]
    embedded = review_items(frames[:1], labels, preds, DEFAULT_TOLERANCES, tmp_path, embed=True, image_width=160)
    assert embedded[0]["img"].startswith("data:image/jpeg;base64,")
    assert f0["label"]["unread"] == []  # a truth label vouches for every field
    # a person read money alone: the other fields are "not read" in the label column and grey in the models'
    labels["frame0"]["known_fields"] = ["player_money"]
    item = review_items(frames[:1], labels, preds, DEFAULT_TOLERANCES, tmp_path)[0]
    assert "player_money" not in item["label"]["unread"] and "player_health" in item["label"]["unread"]
    verdicts = item["models"]["close"]["verdicts"]
    assert verdicts["player_health"] == "unassessed" and verdicts["player_money"] != "unassessed"


def test_flags_export_becomes_open_flags_and_a_relabel_list(tmp_path):
    labels = {"a": {"labeler": "truth"}, "b": {"labeler": "claude"}}
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"flags": [{"id": "a", "note": "armor wrong"}, {"id": "b"}, {"id": "zz"}]}))
    flags_file = tmp_path / "flags.json"
    result = apply_flags(export, flags_file, labels)
    assert result == {"open": 2, "claude": ["b"], "truth": ["a"], "unknown": ["zz"]}
    assert open_flag_ids(flags_file) == {"a", "b"}
    assert json.loads(flags_file.read_text())["flags"][0]["note"] == "armor wrong"
    export.write_text("{not json")
    with pytest.raises(ValueError, match="export.json: not a review flags export"):
        read_flags_export(export)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if find_chromium() is None:
        if os.environ.get("CHIMERA_NO_BROWSER"):
            pytest.skip("CHIMERA_NO_BROWSER set")
        pytest.fail(f"headless Chromium is missing: {INSTALL}")
    downloads = tmp_path_factory.mktemp("downloads")
    driver = chromium(download_dir=downloads)
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    frames, labels, preds = make_set(folder)
    page = write_review(folder / "review.html", frames, labels, preds, DEFAULT_TOLERANCES, title="test </title> page")
    items = review_items(frames, labels, preds, DEFAULT_TOLERANCES, folder)
    with serve(folder) as url:
        yield {"url": f"{url}/review.html", "items": items, "labels": labels, "page": page}


def load(browser, site):
    browser.get(site["url"])
    browser.execute_script("localStorage.clear()")
    browser.get(site["url"])
    for _ in range(100):
        if browser.execute_script("return document.body.dataset.ready") == "1":
            return
        time.sleep(0.05)
    raise AssertionError("the page never became ready")


def key(browser, k):
    from selenium.webdriver.common.action_chains import ActionChains

    browser.find_element("tag name", "body").click()
    ActionChains(browser).send_keys(k).perform()


def counter(browser) -> str:
    return browser.find_element("id", "counter").text


def check(browser, element_id, on=True):
    box = browser.find_element("id", element_id)
    if box.is_selected() != on:
        box.click()


def select(browser, element_id, value):
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", element_id)).select_by_value(value)


def test_keys_move_and_flag_and_flags_persist(browser, site):
    from selenium.webdriver.common.keys import Keys

    load(browser, site)
    n = len(site["items"])
    assert counter(browser).startswith(f"1 / {n}")
    key(browser, Keys.ARROW_RIGHT)
    key(browser, Keys.ARROW_RIGHT)
    assert counter(browser).startswith(f"3 / {n}")
    key(browser, Keys.ARROW_LEFT)
    assert counter(browser).startswith(f"2 / {n}")
    key(browser, "f")
    assert counter(browser).endswith("flagged: 1")
    assert "frame1" in browser.execute_script("return Object.keys(JSON.parse(localStorage.getItem("
                                              "Object.keys(localStorage)[0])))")
    browser.refresh()  # flags live in localStorage: a reload keeps them
    time.sleep(0.2)
    assert counter(browser).endswith("flagged: 1")
    check(browser, "only-flagged")
    assert counter(browser).startswith("1 / 1")
    key(browser, "F")  # unflag: the filtered view empties
    assert counter(browser).startswith("0 / 0") and browser.find_element("id", "empty").is_displayed()


def test_filters_and_the_worst_first_order_match_the_data(browser, site):
    load(browser, site)
    items = site["items"]
    n_disagree = sum(bool(i["disagree"]) for i in items)
    check(browser, "only-disagree")
    assert counter(browser).startswith(f"1 / {n_disagree}")
    check(browser, "only-disagree", False)
    select(browser, "field", "player_armor")
    assert counter(browser).startswith(f"1 / {sum('player_armor' in i['disagree'] for i in items)}")
    select(browser, "field", "")
    select(browser, "source", "real")
    assert counter(browser).startswith(f"1 / {sum(i['source'] == 'real' for i in items)}")
    select(browser, "source", "")
    select(browser, "model", "close")
    check(browser, "only-disagree")
    assert counter(browser).startswith("0 / 0")  # within tolerance is not a disagreement
    check(browser, "only-disagree", False)
    select(browser, "model", "")
    select(browser, "order", "worst")
    worst = min(items, key=lambda i: (i["worst"] if i["worst"] is not None else 2, items.index(i)))
    assert worst["id"][:16] in browser.find_element("id", "meta").text
    headers = [th.text for th in browser.find_elements("css selector", "#fields thead th")]
    assert headers == ["field", "label", "close", "xss"]


def test_export_downloads_valid_json_that_apply_flags_reads(browser, site, tmp_path):
    load(browser, site)
    note = browser.find_element("id", "note")
    note.send_keys("health looks off")
    from selenium.webdriver.common.keys import Keys

    note.send_keys(Keys.ENTER)  # Enter in the note box flags with the note
    browser.find_element("id", "export").click()
    path = browser.downloads / "chimera-review-flags.json"
    for _ in range(100):
        if path.exists() and path.stat().st_size:
            break
        time.sleep(0.05)
    export = json.loads(path.read_text())
    assert [(f["id"], f["note"]) for f in export["flags"]] == [("frame0", "health looks off")]
    result = apply_flags(path, tmp_path / "flags.json", site["labels"])
    assert result["open"] == 1 and result["truth"] == ["frame0"]


def test_untrusted_text_stays_text(browser, site):
    from selenium.webdriver.common.keys import Keys

    load(browser, site)
    for _ in range(3):
        key(browser, Keys.ARROW_RIGHT)  # frame3: the xss model's payloads
    assert browser.execute_script("return window.__pwned") is None
    body = browser.find_element("id", "texts").text + browser.find_element("id", "fields").text
    assert PAYLOADS[0] in body and "javascript:window.__pwned=3" in body
    assert "[U+202E]evil.exe[U+202C] txt" in body  # direction overrides shown, not obeyed
    assert len(browser.find_elements("css selector", "img")) == 1  # the frame itself, nothing injected
    assert not browser.find_elements("css selector", "svg, a[href], iframe, object")
    assert browser.title == "test </title> page"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    html = site["page"].read_text()
    assert "innerHTML" not in html and "Content-Security-Policy" in html
    assert "</script><script>window.__pwned" not in html  # the JSON block cannot be closed from data


def test_review_command_on_pipeline_shaped_folders(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from chimera.cli import app
    from chimera.io import write_parquet
    from chimera.records import write_records

    frames, labels, preds = make_set(tmp_path, n=3)
    monkeypatch.chdir(tmp_path)
    import pandas as pd

    (tmp_path / "data/labeled").mkdir(parents=True)
    write_parquet("data/labeled/splits.parquet", pd.DataFrame([{**f, "split": "eval"} for f in frames]))
    write_records("data/labeled/labels", list(labels.values()))
    for name, records in preds.items():
        write_records(f"data/predictions/{name}", list(records.values()))
    run = CliRunner().invoke
    ok = run(app, ["review", "--compare", "close", "xss", "--out", "reports/review.html"])
    assert ok.exit_code == 0, ok.output
    html = (tmp_path / "reports/review.html").read_text()
    assert '"models": ["close", "xss"]' in html and "../f0.png" in html
    embedded = run(app, ["review", "close", "--embed", "--out", "mail.html", "--image-width", "120"])
    assert embedded.exit_code == 0 and "data:image/jpeg;base64," in (tmp_path / "mail.html").read_text()
    missing = run(app, ["review", "--compare", "nope"])
    assert missing.exit_code == 1 and "no predictions for 'nope'" in missing.output and "close" in missing.output


def test_relabel_run_asks_claude_again_for_just_the_flagged_frames(tmp_path, monkeypatch):
    """Through the real anthropic client at its transport boundary: a cached label is dropped and asked afresh."""
    import httpx2
    import pandas as pd

    from chimera.cli import _relabel
    from chimera.io import write_parquet
    from chimera.labeling.claude import ClaudeConfig, ClaudeLabeler, make_client
    from chimera.schema import example_analysis

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    frames, labels, _ = make_set(tmp_path, n=3)
    (tmp_path / "data/labeled").mkdir(parents=True)
    write_parquet("data/labeled/splits.parquet", pd.DataFrame([{**f, "split": "eval"} for f in frames]))
    sent = []

    def api(request):
        sent.append(json.loads(request.content))
        return httpx2.Response(200, json={
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-5", "stop_reason": "tool_use",
            "content": [{"type": "tool_use", "id": "tu_1", "name": "record_analysis",
                         "input": example_analysis().model_dump(mode="json")}],
            "usage": {"input_tokens": 10, "output_tokens": 5}})

    cfg = ClaudeConfig(max_concurrency=1)
    labeler = ClaudeLabeler(cfg, tmp_path / "cache", client=make_client(cfg, httpx2.Client(transport=httpx2.MockTransport(api))))
    labeler.label_one("frame1", open(frames[1]["path"], "rb").read())  # the label a reviewer doubts, cached
    assert len(sent) == 1
    flags_file = tmp_path / "flags.json"
    flags_file.write_text(json.dumps({"flags": [{"id": "frame1", "status": "open", "labeler": "claude"},
                                                {"id": "frame2", "status": "open", "labeler": "truth"}]}))
    _relabel(["frame1"], flags_file, labeler)
    assert len(sent) == 2  # asked again, not served from the cache
    status = {f["id"]: f["status"] for f in json.loads(flags_file.read_text())["flags"]}
    assert status == {"frame1": "relabeled", "frame2": "open"}
