/* assay report: the item viewer and the pairs filter. Inlined into the page by html.py.
 * Every string from the report goes into the page through textContent, never as markup, so a
 * prompt or a model's response that contains HTML is shown as the text it is. */
(function () {
  "use strict";

  var PAGE = 50;           // cards added per "show more"
  var PROMPT_LINES = 6;    // prompts longer than this start collapsed
  var PROMPT_CHARS = 480;
  var KNOWN_VERDICTS = { "correct": "verdict-correct", "wrong": "verdict-wrong", "no answer": "verdict-no-answer" };

  function byId(id) { return document.getElementById(id); }

  function readJson(id, fallback) {
    var node = byId(id);
    if (!node) { return fallback; }
    return JSON.parse(node.textContent);
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function swatch(color) {
    var s = el("span", "swatch");
    s.style.background = color || "#777777";
    return s;
  }

  function fmtScore(score) {
    if (score === null || score === undefined || typeof score !== "number" || !isFinite(score)) { return "—"; }
    return Number.isInteger(score) ? String(score) : score.toFixed(3);
  }

  function answerList(item, models) {
    // report order first, then any model the report's model list does not know
    var answers = item.answers || {};
    var keys = models.filter(function (m) { return Object.prototype.hasOwnProperty.call(answers, m); });
    Object.keys(answers).forEach(function (m) { if (keys.indexOf(m) === -1) { keys.push(m); } });
    return keys.map(function (m) { return [m, answers[m] || {}]; });
  }

  /* ---------------------------------------------------------------- filtering */

  function prepare(items) {
    // lower-cased text once, so each keystroke is one substring test per item
    items.forEach(function (it) {
      var parts = [it.prompt || "", it.target || ""];
      var verdicts = {};
      Object.keys(it.answers || {}).forEach(function (m) {
        var a = it.answers[m] || {};
        parts.push(a.response === null || a.response === undefined ? "" : String(a.response));
        verdicts[String(a.verdict)] = true;
      });
      it._hay = parts.join("\n").toLowerCase();
      it._verdicts = verdicts;
    });
  }

  function currentFilter() {
    return {
      task: byId("filter-task").value,
      verdict: byId("filter-verdict").value,
      disagree: byId("filter-disagree").checked,
      query: byId("search").value.trim().toLowerCase()
    };
  }

  function matches(it, f) {
    if (f.task && it.task !== f.task) { return false; }
    if (f.verdict && !it._verdicts[f.verdict]) { return false; }
    if (f.disagree && !it.disagree) { return false; }
    if (f.query && it._hay.indexOf(f.query) === -1) { return false; }
    return true;
  }

  /* ---------------------------------------------------------------- cards */

  function promptBlock(prompt) {
    var wrap = el("div", "prompt-wrap");
    var pre = el("pre", "prompt", prompt);
    wrap.appendChild(pre);
    var long = prompt.split("\n").length > PROMPT_LINES || prompt.length > PROMPT_CHARS;
    if (long) {
      pre.classList.add("collapsed");
      var btn = el("button", "toggle-prompt", "show full prompt");
      btn.type = "button";
      btn.addEventListener("click", function () {
        var collapsed = pre.classList.toggle("collapsed");
        btn.textContent = collapsed ? "show full prompt" : "collapse prompt";
      });
      wrap.appendChild(btn);
    }
    return wrap;
  }

  function choicesBlock(item) {
    var frag = document.createDocumentFragment();
    if (!Array.isArray(item.choices) || item.choices.length === 0) { return frag; }
    frag.appendChild(el("div", "choices-label small", "choices"));
    var ol = el("ol", "choices");
    ol.start = 0;
    item.choices.forEach(function (c, i) {
      var li = el("li", null, c);
      if (String(c) === item.target || String(i) === item.target) { li.classList.add("is-target"); }
      ol.appendChild(li);
    });
    frag.appendChild(ol);
    return frag;
  }

  function verdictBadge(verdict) {
    var text = verdict === null || verdict === undefined ? "—" : String(verdict);
    var badge = el("span", "badge verdict " + (KNOWN_VERDICTS[text] || "verdict-other"), text);
    badge.dataset.verdict = text;
    return badge;
  }

  function judgementsBlock(judgements) {
    // each judge's verdict on this answer, its raw replies collapsed (text only, never markup)
    var wrap = el("div", "judgements");
    (judgements || []).forEach(function (j) {
      var row = el("div", "judgement");
      row.dataset.judge = String(j.judge);
      row.dataset.mode = String(j.mode);
      row.appendChild(el("span", "judge-name", "judge " + j.judge + (j.mode === "pairwise" ? " (pairwise)" : "")));
      var badge = el("span", "badge judge-" + (j.status === "ok" ? "ok" : j.status === "missing" ? "missing" : "unparseable"), j.verdict);
      badge.dataset.status = String(j.status);
      row.appendChild(badge);
      var replies = (j.replies || []).filter(function (r) { return r && r.text !== null && r.text !== undefined; });
      if (replies.length) {
        var details = el("details", "judge-replies");
        details.appendChild(el("summary", null, replies.length === 1 ? "judge's reply" : "judge's replies (" + replies.length + ")"));
        replies.forEach(function (r) {
          if (replies.length > 1 || r.label !== "reply") { details.appendChild(el("div", "reply-label", r.label)); }
          details.appendChild(el("pre", "reply", r.text));
        });
        row.appendChild(details);
      }
      wrap.appendChild(row);
    });
    return wrap;
  }

  function answersTable(item, models, colors) {
    var table = el("table", "answers");
    var head = el("tr");
    ["model", "response", "extracted", "verdict", "score"].forEach(function (h) { head.appendChild(el("th", null, h)); });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    answerList(item, models).forEach(function (pair) {
      var m = pair[0], a = pair[1];
      var tr = el("tr");
      tr.dataset.model = m;
      var name = el("td", "model");
      name.appendChild(swatch(colors[m]));
      name.appendChild(document.createTextNode(m));
      var resp = el("td", "response-cell");
      resp.appendChild(el("pre", "response", a.response === null || a.response === undefined ? "" : a.response));
      if (Array.isArray(a.judgements) && a.judgements.length) { resp.appendChild(judgementsBlock(a.judgements)); }
      var extracted = el("td", "extracted", a.extracted === null || a.extracted === undefined ? "—" : a.extracted);
      var v = el("td", "verdict-cell");
      v.appendChild(verdictBadge(a.verdict));
      var score = el("td", "num", fmtScore(a.score));
      // labels let narrow screens stack each answer as a small block (see report.css)
      [[name, "model"], [resp, "response"], [extracted, "extracted"], [v, "verdict"], [score, "score"]].forEach(function (pair) {
        pair[0].dataset.label = pair[1];
        tr.appendChild(pair[0]);
      });
      body.appendChild(tr);
    });
    return table;
  }

  function card(item, models, colors) {
    var div = el("article", "item");
    div.dataset.task = item.task;
    div.dataset.doc = String(item.doc_id);
    div.dataset.prompt = String(item.prompt_id);
    var head = el("div", "item-head");
    head.appendChild(el("span", "task", item.task));
    head.appendChild(el("span", null, "prompt " + item.prompt_id));
    head.appendChild(el("span", null, "doc " + item.doc_id));
    if (item.disagree) { head.appendChild(el("span", "disagree", "models disagree")); }
    div.appendChild(head);
    div.appendChild(promptBlock(String(item.prompt === null || item.prompt === undefined ? "" : item.prompt)));
    var target = el("p", "target");
    target.appendChild(el("span", "label", "target: "));
    target.appendChild(el("span", "target-text", item.target));
    div.appendChild(target);
    div.appendChild(choicesBlock(item));
    div.appendChild(answersTable(item, models, colors));
    return div;
  }

  /* ---------------------------------------------------------------- viewer */

  function initItems() {
    var list = byId("item-list");
    if (!list) { return; }
    var items = readJson("items-data", []);
    var meta = readJson("report-meta", { models: [], colors: {} });
    prepare(items);
    var state = { filtered: items, shown: 0 };
    var more = byId("show-more");
    var count = byId("item-count");

    function showMore() {
      var frag = document.createDocumentFragment();
      var next = state.filtered.slice(state.shown, state.shown + PAGE);
      next.forEach(function (it) { frag.appendChild(card(it, meta.models, meta.colors)); });
      list.appendChild(frag);
      state.shown += next.length;
      more.hidden = state.shown >= state.filtered.length;
      more.textContent = "show more (" + Math.min(PAGE, state.filtered.length - state.shown) + " of " +
        (state.filtered.length - state.shown) + " left)";
    }

    function apply() {
      var f = currentFilter();
      state.filtered = items.filter(function (it) { return matches(it, f); });
      state.shown = 0;
      list.replaceChildren();
      count.textContent = state.filtered.length + " of " + items.length + " items";
      showMore();
    }

    ["filter-task", "filter-verdict", "filter-disagree"].forEach(function (id) {
      byId(id).addEventListener("change", apply);
    });
    byId("search").addEventListener("input", apply);
    more.addEventListener("click", showMore);
    apply();
  }

  function initPairs() {
    var select = byId("filter-pair-kind");
    if (!select) { return; }
    select.addEventListener("change", function () {
      var kind = select.value;
      document.querySelectorAll("#pairs-table tr.pair").forEach(function (tr) {
        tr.hidden = kind !== "" && tr.dataset.kind !== kind;
      });
    });
  }

  initItems();
  initPairs();
})();
