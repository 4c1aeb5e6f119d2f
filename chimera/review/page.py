"""`chimera review`: one standalone HTML page where a person checks labels and predictions frame by frame.

Python decides everything that is a judgement (which fields agree, within tolerance or not, each frame's score,
the worst-first order), with the evaluation's own `score_frame`; the page only shows it. Every text on the page
comes from labels or model output, which are untrusted: the data travels as JSON inside a non-executing
`<script type="application/json">` block (with `<`, `>`, `&` and line separators escaped), the page's own script
sets text with `textContent` only (never `innerHTML`), builds no links or handlers from data, shows unicode
direction controls as visible `[U+202E]` marks, and a Content-Security-Policy admits only the page's own script
and style by hash.

Flags live in the browser (localStorage, keyed by the page) and export as JSON; chimera/review/flags.py turns an
export into the open-flags file the split stage reads.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
from pathlib import Path

from PIL import Image

from chimera.evaluation.metrics import (GAME_STATE_FIELDS, LIST_FIELDS, NUMERIC_FIELDS, UNASSESSED,
                                      frame_value_accuracy, score_frame)

TEXT_FIELDS = [("analysis", "situation_summary"), ("analysis", "economy_assessment"), ("analysis", "round_importance"),
               ("analysis", "immediate_threats"), ("analysis", "opportunities"), ("advice", "primary_action"),
               ("advice", "reasoning"), ("advice", "fallback"), ("advice", "callout")]
AGREE, TOLERANT, DISAGREE = "agree", "tolerant", "disagree"  # and UNASSESSED, the evaluation's own outcome


def field_verdicts(score) -> dict[str, str]:
    """Per game_state field: agree (exact, or both null), tolerant (numeric, within tolerance), disagree, or
    unassessed (the label does not vouch for the field: a number a person could not read)."""
    out = {}
    for name in GAME_STATE_FIELDS:
        if score.outcomes[name] == UNASSESSED:  # the label does not vouch for it (known_fields)
            out[name] = UNASSESSED
        elif name in LIST_FIELDS:
            out[name] = AGREE if score.list_f1[name][2] == 1.0 else DISAGREE
        elif score.outcomes[name] in ("hit", "both_null"):
            out[name] = AGREE
        elif name in NUMERIC_FIELDS and score.within_tol.get(name):
            out[name] = TOLERANT
        else:
            out[name] = DISAGREE
    return out


def _texts(analysis: dict | None) -> dict[str, object]:
    if not analysis:
        return {}
    return {f"{part}.{name}": (analysis.get(part) or {}).get(name) for part, name in TEXT_FIELDS}


def image_source(path: str | Path, page_dir: Path, embed: bool, width: int) -> str:
    """A data: URL of the frame downscaled to `width` (embed), else its path relative to the page."""
    path = Path(path)
    if not embed:
        return Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix()
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > width:
            im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def review_items(frames: list[dict], labels: dict[str, dict], predictions: dict[str, dict[str, dict]],
                 tolerances: dict, page_dir: Path, embed: bool = False, image_width: int = 480) -> list[dict]:
    """One item per frame (dicts with id, path, source): its label, each model's answer judged field by field."""
    items = []
    for frame in frames:
        label = labels.get(frame["id"])
        truth = (label or {}).get("analysis")
        item = {"id": frame["id"], "source": frame.get("source") or "", "img": image_source(frame["path"], page_dir,
                                                                                          embed, image_width),
                "labeler": (label or {}).get("labeler") or "", "label": None, "models": {}, "worst": None,
                "disagree": []}
        if truth:
            known = label.get("known_fields")  # a label that vouches for some fields: the rest nobody read
            item["label"] = {"fields": {n: truth["game_state"].get(n) for n in GAME_STATE_FIELDS},
                             "texts": _texts(truth),
                             "unread": [n for n in GAME_STATE_FIELDS if known is not None and n not in known]}
        accuracies, disagree = [], set()
        for model, records in predictions.items():
            record = records.get(frame["id"])
            if record is None:
                item["models"][model] = {"missing": True}
                continue
            answer = record.get("analysis") or {}
            entry = {"missing": False, "valid": bool(record.get("schema_valid", bool(answer))),
                     "fields": {n: (answer.get("game_state") or {}).get(n) for n in GAME_STATE_FIELDS},
                     "texts": _texts(answer), "error": record.get("error") or ""}
            if not answer:  # not a valid Analysis: show what it wrote
                entry["raw"] = (record.get("raw_text") or "")[:2000]
            if truth:
                score = score_frame(frame["id"], record, label, tolerances)
                entry["verdicts"] = field_verdicts(score)
                entry["value_accuracy"] = frame_value_accuracy(score)
                if entry["value_accuracy"] == entry["value_accuracy"]:  # not nan
                    accuracies.append(entry["value_accuracy"])
                else:
                    entry["value_accuracy"] = None
                disagree |= {n for n, v in entry["verdicts"].items() if v == DISAGREE}
            item["models"][model] = entry
        item["worst"] = min(accuracies) if accuracies else None
        item["disagree"] = sorted(disagree)
        items.append(item)
    return items


def _json_for_script(data) -> str:
    """JSON that cannot end its <script> block or open markup, whatever strings it holds."""
    text = json.dumps(data, ensure_ascii=False)
    for ch, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render_page(items: list[dict], models: list[str], title: str = "Chimera review") -> str:
    page_id = hashlib.sha256(json.dumps([i["id"] for i in items]).encode()).hexdigest()[:12]
    data = {"title": title, "page": page_id, "models": models, "fields": list(GAME_STATE_FIELDS),
            "texts": [f"{p}.{n}" for p, n in TEXT_FIELDS], "items": items,
            "sources": sorted({i["source"] for i in items})}
    csp = (f"default-src 'none'; img-src 'self' data: blob: file:; style-src {_sha256(STYLE)}; "
           f"script-src {_sha256(SCRIPT)}; base-uri 'none'; form-action 'none'; object-src 'none'")
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<link rel=\"icon\" href=\"data:,\">\n"  # no favicon request: a served page logs no 404
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style></head>\n<body>\n{BODY}\n"
            f"<script type=\"application/json\" id=\"review-data\">{_json_for_script(data)}</script>\n"
            f"<script>{SCRIPT}</script>\n</body></html>\n")


def write_review(out: str | Path, frames: list[dict], labels: dict, predictions: dict[str, dict[str, dict]],
                 tolerances: dict, embed: bool = False, image_width: int = 480, title: str = "Chimera review") -> Path:
    from chimera.io import atomic_write_text

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    items = review_items(frames, labels, predictions, tolerances, out.parent, embed, image_width)
    atomic_write_text(out, render_page(items, list(predictions), title))
    return out


# --------------------------------------------------------------------------------------------------
# The page: static markup, style and script (no data inside; CSP admits them by hash)
# --------------------------------------------------------------------------------------------------

BODY = """<header>
  <h1 id="title"></h1>
  <div class="controls">
    <button id="prev" type="button" title="previous (Left arrow)">&larr;</button>
    <span id="counter" aria-live="polite"></span>
    <button id="next" type="button" title="next (Right arrow)">&rarr;</button>
    <button id="flag" type="button" title="flag this frame (F)">Flag (F)</button>
    <input id="note" type="text" placeholder="note for the flag (Enter to save)" size="28">
    <label>order <select id="order"><option value="natural">as listed</option>
      <option value="worst">worst first (error gallery)</option></select></label>
    <label><input id="only-disagree" type="checkbox"> only disagreements</label>
    <label><input id="only-flagged" type="checkbox"> only flagged</label>
    <label>field <select id="field"><option value="">any</option></select></label>
    <label>model <select id="model"><option value="">all</option></select></label>
    <label>source <select id="source"><option value="">all</option></select></label>
    <button id="export" type="button">Export flags</button>
  </div>
</header>
<main>
  <section class="frame"><img id="image" alt="frame"><div id="meta"></div></section>
  <section class="tables">
    <table id="fields"><thead></thead><tbody></tbody></table>
    <table id="texts"><thead></thead><tbody></tbody></table>
  </section>
</main>
<p id="empty" hidden>No frame matches the filters.</p>
<footer>Keys: Left/Right previous/next, F flag or unflag (the note box takes an optional note).
Green: agrees; amber: a number within tolerance; red: disagrees; grey: not in the label (a person could
not read it).</footer>"""

STYLE = """body{font:14px system-ui,sans-serif;margin:0;color:#222}
header{position:sticky;top:0;background:#f4f4f6;border-bottom:1px solid #ccc;padding:6px 10px;z-index:1}
h1{font-size:16px;margin:0 0 4px}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center}
main{display:flex;gap:12px;padding:10px;align-items:flex-start}
.frame{flex:0 0 46%}.frame img{width:100%;border:1px solid #999}
.tables{flex:1;overflow-x:auto}
table{border-collapse:collapse;margin-bottom:12px;width:100%}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top;white-space:pre-wrap;
unicode-bidi:isolate}
td.agree{background:#e3f5e1}td.tolerant{background:#fff1c9}td.disagree{background:#fbdada}td.unassessed{color:#999}
td.null{color:#888;font-style:italic}
.flagged header,.flagged #counter{color:#b00}#counter{min-width:12em;font-weight:600}
footer{padding:6px 10px;color:#555;font-size:12px}"""

SCRIPT = r"""(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("review-data").textContent);
  var storeKey = "chimera-review-flags:" + data.page;
  var flags = {};
  try { flags = JSON.parse(localStorage.getItem(storeKey) || "{}") || {}; } catch (e) { flags = {}; }
  var view = [], pos = 0;
  var $ = function (id) { return document.getElementById(id); };
  // untrusted text: direction controls shown as visible marks, everything set through textContent
  var BIDI = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;
  function show(value) {
    if (value === null || value === undefined) return "null";
    if (Array.isArray(value)) value = value.length ? value.join(", ") : "(none)";
    return String(value).replace(BIDI, function (c) {
      return "[U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + "]";
    });
  }
  function cell(tag, text, cls) {
    var el = document.createElement(tag);
    el.textContent = show(text);
    if (cls) el.className = cls;
    return el;
  }
  function option(select, value) {
    var o = document.createElement("option");
    o.value = value; o.textContent = show(value);
    select.appendChild(o);
  }
  function reset(table, first, models) {  // empty the table, head it "first | label | model...", return its body
    var head = document.createElement("tr");
    [first, "label"].concat(models).forEach(function (name) { head.appendChild(cell("th", name)); });
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren();
    return table.tBodies[0];
  }
  function shownModels() { var m = $("model").value; return m ? [m] : data.models; }
  function disagrees(item, field) {
    return shownModels().some(function (m) {
      var e = item.models[m];
      if (!e || e.missing || !e.verdicts) return false;
      return field ? e.verdicts[field] === "disagree"
                   : Object.keys(e.verdicts).some(function (f) { return e.verdicts[f] === "disagree"; });
    });
  }
  function worst(item) {
    var vals = shownModels().map(function (m) { var e = item.models[m]; return e && e.value_accuracy; })
      .filter(function (v) { return typeof v === "number"; });
    return vals.length ? Math.min.apply(null, vals) : 2;
  }
  function rebuild(keepId) {
    var field = $("field").value, source = $("source").value;
    view = data.items.filter(function (item) {
      if (source && item.source !== source) return false;
      if ($("only-flagged").checked && !flags[item.id]) return false;
      if (($("only-disagree").checked || field) && !disagrees(item, field)) return false;
      return true;
    });
    if ($("order").value === "worst") {
      view = view.map(function (item, i) { return [worst(item), i, item]; })
        .sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; }).map(function (x) { return x[2]; });
    }
    var at = keepId ? view.findIndex(function (i) { return i.id === keepId; }) : -1;
    pos = at >= 0 ? at : 0;
    render();
  }
  function render() {
    var item = view[pos];
    $("empty").hidden = !!item;
    document.querySelector("main").hidden = !item;
    var nflags = Object.keys(flags).length;
    $("counter").textContent = item ? (pos + 1) + " / " + view.length + " (of " + data.items.length + ")  flagged: " + nflags
                                    : "0 / 0 (of " + data.items.length + ")  flagged: " + nflags;
    if (!item) return;
    document.body.classList.toggle("flagged", !!flags[item.id]);
    $("flag").textContent = flags[item.id] ? "Unflag (F)" : "Flag (F)";
    $("note").value = flags[item.id] ? flags[item.id].note : "";
    $("image").src = item.img;
    $("meta").textContent = show(item.id.slice(0, 16) + "  source: " + item.source + "  labeler: " + item.labeler);
    var models = shownModels();
    var fbody = reset($("fields"), "field", models);
    var sr = document.createElement("tr");
    sr.appendChild(cell("td", "frame score")); sr.appendChild(cell("td", ""));
    models.forEach(function (m) {
      var e = item.models[m] || {missing: true};
      sr.appendChild(cell("td", e.missing ? "no prediction" :
        "value accuracy " + (typeof e.value_accuracy === "number" ? Math.round(100 * e.value_accuracy) + "%" : "n/a") +
        (e.valid ? ", schema-valid" : ", not schema-valid") + (e.error ? ", error: " + e.error : "")));
    });
    fbody.appendChild(sr);
    data.fields.forEach(function (f) {
      var tr = document.createElement("tr");
      tr.dataset.field = f;
      tr.appendChild(cell("th", f));
      var lv = item.label ? item.label.fields[f] : null;
      var unread = item.label && (item.label.unread || []).indexOf(f) >= 0;
      tr.appendChild(unread ? cell("td", "not read", "unassessed")
                            : cell("td", lv, lv === null || lv === undefined ? "null" : ""));
      models.forEach(function (m) {
        var e = item.models[m];
        if (!e || e.missing) { tr.appendChild(cell("td", "-", "null")); return; }
        var v = e.fields[f];
        var td = cell("td", v, e.verdicts ? e.verdicts[f] : (v === null || v === undefined ? "null" : ""));
        if (e.verdicts && e.verdicts[f] === "tolerant") td.title = "within tolerance";
        tr.appendChild(td);
      });
      fbody.appendChild(tr);
    });
    var tbody = reset($("texts"), "text", models);
    data.texts.forEach(function (t) {
      var tr = document.createElement("tr");
      tr.appendChild(cell("th", t));
      tr.appendChild(cell("td", item.label ? item.label.texts[t] : null));
      models.forEach(function (m) {
        var e = item.models[m];
        tr.appendChild(cell("td", !e || e.missing ? "-" : (e.raw !== undefined && t === "analysis.situation_summary"
          ? "raw output: " + e.raw : e.texts[t])));
      });
      tbody.appendChild(tr);
    });
  }
  function save() { localStorage.setItem(storeKey, JSON.stringify(flags)); }
  function toggleFlag() {
    var item = view[pos];
    if (!item) return;
    if (flags[item.id]) delete flags[item.id];
    else flags[item.id] = {note: $("note").value, flagged_at: new Date().toISOString(), source: item.source,
                           labeler: item.labeler};
    save();
    if ($("only-flagged").checked) rebuild(item.id); else render();  // an unflagged frame leaves the flagged view
  }
  function move(step) { if (view.length) { pos = Math.min(view.length - 1, Math.max(0, pos + step)); render(); } }
  function exportFlags() {
    var out = {page: data.page, title: data.title, exported_at: new Date().toISOString(),
               flags: Object.keys(flags).sort().map(function (id) {
                 var f = flags[id];
                 return {id: id, note: f.note, flagged_at: f.flagged_at, source: f.source, labeler: f.labeler};
               })};
    var url = URL.createObjectURL(new Blob([JSON.stringify(out, null, 2)], {type: "application/json"}));
    var a = document.createElement("a");
    a.href = url; a.download = "chimera-review-flags.json";
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }
  $("title").textContent = show(data.title);
  data.fields.forEach(function (f) { option($("field"), f); });
  data.models.forEach(function (m) { option($("model"), m); });
  data.sources.forEach(function (s) { option($("source"), s); });
  // filters keep the frame in hand when it still qualifies; a new order starts from its top (the worst frame)
  ["only-disagree", "only-flagged", "field", "model", "source"].forEach(function (id) {
    $(id).addEventListener("change", function () { rebuild(view[pos] && view[pos].id); });
  });
  $("order").addEventListener("change", function () { rebuild(); });
  $("prev").addEventListener("click", function () { move(-1); });
  $("next").addEventListener("click", function () { move(1); });
  $("flag").addEventListener("click", toggleFlag);
  $("export").addEventListener("click", exportFlags);
  $("note").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") {
      var item = view[pos];
      if (item && flags[item.id]) { flags[item.id].note = $("note").value; save(); }
      else toggleFlag();
      $("note").blur();
    }
    ev.stopPropagation();
  });
  document.addEventListener("keydown", function (ev) {
    var t = ev.target;  // typing a note or choosing in a list keeps its keys; checkboxes and buttons do not
    if (t && ((t.tagName === "INPUT" && t.type === "text") || t.tagName === "SELECT")) return;
    if (ev.key === "ArrowRight") { move(1); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft") { move(-1); ev.preventDefault(); }
    else if (ev.key === "f" || ev.key === "F") { toggleFlag(); ev.preventDefault(); }
  });
  rebuild();
  document.body.dataset.ready = "1";
  document.body.dataset.readyMs = String(Math.round(performance.now()));  // time to interactive (bench_review.py)
})();"""
