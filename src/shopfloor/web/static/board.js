// Shopfloor web board: live updates, actions and inline diff comments. No framework, no build.
//
// Live: one EventSource on /api/v1/events. Any event means "the files changed": the page
// fetches its fragment again (the server keeps no state; it re-reads the files) and swaps each
// region whose HTML differs. One fetch at a time; events that arrive meanwhile cause one more.
//
// Actions: buttons with data-action and forms with class "api" POST JSON to the API with the
// page's CSRF token (meta csrf-token) in X-CSRF-Token; the login cookie goes along by itself.
// Text from the server is only ever put into the page as textContent or as HTML the server
// escaped; nothing here builds markup out of task text.
"use strict";

(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  // ------------------------------------------------------------------ talking to the API

  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const msg = data && data.error ? data.error.message : res.status + " " + res.statusText;
      throw new Error(msg);
    }
    return data;
  }

  function toast(text, bad) {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text;
    el.className = bad ? "show bad" : "show";
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.className = ""; }, bad ? 8000 : 3000);
  }

  const ACTIONS = {
    "approve": (id) => [`/api/v1/${id}/approve`, {}],
    "retry": (id) => [`/api/v1/${id}/retry`, {}],
    "cancel": (id) => [`/api/v1/${id}/cancel`, {}],
    "close-hotfix": (id) => [`/api/v1/${id}/close`, { force: false }],
    "close-hotfix-force": (id) => [`/api/v1/${id}/close`, { force: true }],
  };

  async function act(button) {
    const id = encodeURIComponent(button.dataset.task);
    const make = ACTIONS[button.dataset.action];
    if (!make) return;
    if (button.classList.contains("danger") && !confirm(button.textContent + " " + button.dataset.task + "?")) return;
    const [url, body] = make(id);
    button.disabled = true;
    try {
      await post(url, body);
      toast(button.textContent + ": " + button.dataset.task);
      refresh();
    } catch (e) {
      toast(e.message, true);
    } finally {
      button.disabled = false;
    }
  }

  async function submitForm(form) {
    const body = {};
    for (const [k, v] of new FormData(form)) body[k] = v;
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      const data = await post(form.dataset.url, body);
      const id = data && (data.id || (data.task && data.task.id));
      toast("Filed " + (id || ""));
      form.reset();
      form.closest("details")?.removeAttribute("open");
      refresh();
    } catch (e) {
      toast(e.message, true);
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ inline diff comments

  const comments = [];  // {path, line, text, side}

  function renderPending() {
    const list = document.querySelector(".pending-comments");
    if (!list) return;
    list.replaceChildren();
    comments.forEach((c, i) => {
      const li = document.createElement("li");
      const where = document.createElement("code");
      where.textContent = `${c.path}:${c.line}`;
      const text = document.createElement("span");
      text.textContent = " " + c.text + " ";
      const drop = document.createElement("button");
      drop.type = "button";
      drop.textContent = "×";
      drop.title = "drop this comment";
      drop.addEventListener("click", () => { comments.splice(i, 1); markRows(); renderPending(); });
      li.append(where, text, drop);
      list.append(li);
    });
  }

  function markRows() {
    document.querySelectorAll("tr.ln.commented").forEach((r) => r.classList.remove("commented"));
    for (const c of comments) {
      const sel = `tr.ln[data-path="${CSS.escape(c.path)}"][data-line="${c.line}"][data-side="${c.side}"]`;
      document.querySelector(sel)?.classList.add("commented");
    }
  }

  function openCommentBox(row) {
    const next = row.nextElementSibling;
    if (next && next.classList.contains("comment-box")) { next.querySelector("textarea").focus(); return; }
    const box = document.createElement("tr");
    box.className = "comment-box";
    const td = document.createElement("td");
    td.colSpan = 2;
    const area = document.createElement("textarea");
    area.rows = 3;
    area.placeholder = `Comment on ${row.dataset.path}:${row.dataset.line}`;
    const add = document.createElement("button");
    add.type = "button";
    add.className = "add-comment";
    add.textContent = "Add comment";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "Cancel";
    add.addEventListener("click", () => {
      const text = area.value.trim();
      if (!text) return;
      const side = row.dataset.side;
      comments.push({
        path: row.dataset.path,
        line: Number(row.dataset.line),
        side: side,
        text: side === "old" ? "(on the removed line) " + text : text,
      });
      box.remove();
      markRows();
      renderPending();
    });
    cancel.addEventListener("click", () => box.remove());
    td.append(area, add, cancel);
    box.append(td);
    row.after(box);
    area.focus();
  }

  async function sendRework(form) {
    const notes = (new FormData(form).get("notes") || "").toString().trim();
    if (!notes && comments.length === 0) { toast("Write a note or comment on a line first", true); return; }
    const body = {
      notes: notes,
      comments: comments.map((c) => ({ path: c.path, line: c.line, text: c.text })),
    };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await post(`/api/v1/${encodeURIComponent(form.dataset.task)}/rework`, body);
      comments.length = 0;
      form.reset();
      markRows();
      renderPending();
      toast("Sent back to the Coder");
      refresh();
    } catch (e) {
      toast(e.message, true);
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ run logs

  function followLog(details) {
    if (details.dataset.following) return;
    details.dataset.following = "1";
    const pre = details.querySelector("pre.log");
    const src = new EventSource(details.dataset.logUrl);
    // Each `log` event is JSON: {"file": "stdout.log", "text": "<a chunk>"}; `end` closes.
    let file = null;
    src.addEventListener("log", (ev) => {
      let chunk;
      try { chunk = JSON.parse(ev.data); } catch (e) { return; }
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      if (chunk.file && chunk.file !== file) {
        file = chunk.file;
        pre.append(document.createTextNode(`--- ${file}\n`));
      }
      pre.append(document.createTextNode(chunk.text || ""));
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    });
    src.addEventListener("end", () => src.close());
    src.onerror = () => { if (src.readyState === EventSource.CLOSED) details.dataset.following = ""; };
  }

  // ------------------------------------------------------------------ live regions

  let fetching = false;
  let again = false;

  function fragmentUrl() {
    const board = document.querySelector("main.board");
    if (board) return board.dataset.fragment;
    const taskMain = document.querySelector("main.task[data-task-id]");
    if (taskMain) return "/fragment/task/" + encodeURIComponent(taskMain.dataset.taskId);
    return null;
  }

  function swapBoard(html) {
    const fresh = document.createElement("template");
    fresh.innerHTML = html;
    for (const region of fresh.content.querySelectorAll("[data-region]")) {
      const old = document.querySelector(`[data-region="${region.dataset.region}"]`);
      if (old && old.outerHTML !== region.outerHTML) old.replaceWith(region);
    }
    document.dispatchEvent(new CustomEvent("shopfloor:updated"));
  }

  function swapTask(html) {
    const fresh = document.createElement("template");
    fresh.innerHTML = html;
    const head = fresh.content.querySelector("header.task-head");
    const oldHead = document.querySelector("header.task-head");
    if (head && oldHead && head.outerHTML !== oldHead.outerHTML) oldHead.replaceWith(head);
    for (const id of ["checks", "tracker"]) {
      const mine = document.getElementById(id);
      const theirs = fresh.content.getElementById ? fresh.content.getElementById(id) : fresh.content.querySelector("#" + id);
      if (theirs && mine) { if (mine.outerHTML !== theirs.outerHTML) mine.replaceWith(theirs); }
      else if (theirs) document.querySelector("#runs")?.after(theirs);
    }
    // New runs are added on top; runs already shown keep their open logs.
    const runs = document.getElementById("runs");
    const freshRuns = fresh.content.querySelector("#runs");
    if (runs && freshRuns) {
      const shown = new Set([...runs.querySelectorAll("details.run-log")].map((d) => d.dataset.runId));
      const added = [...freshRuns.querySelectorAll("details.run-log")].filter((d) => !shown.has(d.dataset.runId));
      const heading = runs.querySelector("h2");
      for (const d of added.reverse()) { runs.querySelector("p.empty")?.remove(); heading.after(d); if (d.open) followLog(d); }
      const total = freshRuns.querySelector("h2");
      if (total && heading.outerHTML !== total.outerHTML) heading.replaceWith(total);
    }
    document.dispatchEvent(new CustomEvent("shopfloor:updated"));
  }

  // The event already says where each touched task is now (read from disk by the server):
  // a card that changed lane moves at once; the fragment fetched next is the full truth
  // (order, counts, new cards) and replaces it region by region.
  function moveCards(ev) {
    if (!document.querySelector("main.board")) return;
    let data;
    try { data = JSON.parse(ev.data); } catch (e) { return; }
    for (const t of data.tasks || []) {
      const card = document.querySelector(`li.card[data-task-id="${CSS.escape(t.id)}"]`);
      const list = document.querySelector(`[data-lane="${CSS.escape(t.lane)}"] ol.cards`);
      if (!card || !list) continue;
      if (!list.contains(card)) {
        list.querySelector("li.empty")?.remove();
        list.prepend(card);
      }
      const status = card.querySelector(".status");
      if (status && t.status) status.textContent = t.status;
    }
  }

  async function refresh() {
    const url = fragmentUrl();
    if (!url) return;
    if (fetching) { again = true; return; }
    fetching = true;
    document.body.dataset.busy = "1";  // a fetch in flight (benchmarks wait for quiet)
    try {
      do {
        again = false;
        const res = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (!res.ok) break;
        const html = await res.text();
        if (document.querySelector("main.board")) swapBoard(html); else swapTask(html);
      } while (again);
    } catch (e) {
      // The server went away: the event stream reconnects, and its next event refreshes.
    } finally {
      fetching = false;
      document.body.dataset.busy = "";
    }
  }

  function listen() {
    if (!window.EventSource || !fragmentUrl()) return;
    const events = new EventSource("/api/v1/events");
    let opened = false;
    // `changed` names the files touched; `resync` says some were missed. Either way the
    // page reads its fragment again (the files are the truth, not the event).
    events.addEventListener("changed", (ev) => { moveCards(ev); refresh(); });
    events.addEventListener("resync", refresh);
    events.onopen = () => {
      document.body.classList.remove("offline");
      document.body.dataset.live = "1";  // tests and scripts wait for this before changing files
      if (opened) refresh();  // a reconnect: what was missed meanwhile
      opened = true;
    };
    events.onerror = () => {
      document.body.classList.add("offline");
      document.body.dataset.live = "";
    };
  }

  // ------------------------------------------------------------------ wiring

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (button) { ev.preventDefault(); act(button); return; }
    const row = ev.target.closest("table.diff tr.ln");
    if (row && !ev.target.closest(".comment-box")) openCommentBox(row);
  });

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.classList.contains("api")) { ev.preventDefault(); submitForm(form); }
    else if (form.classList.contains("rework")) { ev.preventDefault(); sendRework(form); }
  });

  document.addEventListener("toggle", (ev) => {
    const d = ev.target;
    if (d.matches && d.matches("details.run-log") && d.open) followLog(d);
  }, true);

  // Running runs' ages tick between events (the server sent when each started).
  function fmtAge(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + "s";
    const pad = (n) => String(n).padStart(2, "0");
    if (s < 3600) return Math.floor(s / 60) + "m" + pad(s % 60) + "s";
    return Math.floor(s / 3600) + "h" + pad(Math.floor((s % 3600) / 60)) + "m";
  }

  function tick() {
    for (const el of document.querySelectorAll(".run .age[data-started]")) {
      const started = Date.parse(el.dataset.started);
      if (!Number.isNaN(started)) el.textContent = fmtAge(Date.now() - started);
    }
  }

  function start() {
    setInterval(tick, 1000);
    document.querySelectorAll("details.run-log[open]").forEach(followLog);
    listen();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
