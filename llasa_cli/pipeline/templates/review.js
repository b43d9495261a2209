"use strict";
// The review page: draws one page of segment cards at a time from the JSON the page carries. Every
// text goes in through textContent, never as markup. Audio loads only when played (preload="none").
(() => {
  const data = JSON.parse(document.getElementById("review-data").textContent);
  const segments = data.segments;
  const byId = new Map(segments.map((s) => [s.id, s]));
  const chapters = new Map(data.chapters.map((c) => [c.number, c]));
  // "Flagged first": flagged and failed, then suspect, pending, accepted, the rest; book order within each.
  const RANK = { flagged: 0, failed: 0, suspect: 1, pending: 2, accepted: 3, ok: 4 };
  const joiner = data.lang === "zh" ? "" : " ";
  const $ = (id) => document.getElementById(id);
  const cardTemplate = $("segment-card");
  const list = $("segments");
  const player = $("chapter-audio");
  const needsReview = (s) => RANK[s.cat] === 0;
  const state = { filter: segments.some(needsReview) ? "review" : "all", failure: "", chapter: "", page: 0 };

  function shown(s) {
    const byFilter = {
      review: needsReview(s),
      suspect: s.cat === "suspect",
      accepted: s.cat === "accepted",
      queued: s.queued,
      all: true,
    }[state.filter];
    return byFilter && (!state.failure || s.fail.includes(state.failure)) && (!state.chapter || s.ch === Number(state.chapter));
  }

  function selection() {
    return segments.filter(shown).sort((a, b) => RANK[a.cat] - RANK[b.cat] || a.ch - b.ch || a.i - b.i);
  }

  function render() {
    const chosen = selection();
    const pages = Math.max(1, Math.ceil(chosen.length / PAGE_SIZE));
    state.page = Math.max(0, Math.min(state.page, pages - 1));
    const first = state.page * PAGE_SIZE;
    const cards = chosen.slice(first, first + PAGE_SIZE).map(build);
    if (cards.length) {
      list.replaceChildren(...cards);
    } else {
      const empty = document.createElement("p");
      empty.className = "muted";
      empty.textContent = "No segment matches these filters.";
      list.replaceChildren(empty);
    }
    $("count").textContent = `${chosen.length} segment${chosen.length === 1 ? "" : "s"}`;
    $("page").textContent = `page ${state.page + 1} of ${pages}`;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
    summarise();
  }

  function summarise() {
    const count = (test) => segments.filter(test).length;
    const parts = [
      `${segments.length} segments`,
      `${count((s) => s.cat === "flagged")} flagged`,
      `${count((s) => s.cat === "failed")} failed`,
      `${count((s) => s.cat === "suspect")} suspect`,
      `${count((s) => s.cat === "accepted")} accepted`,
      `${count((s) => s.queued)} queued for redo`,
      `${count((s) => s.cat === "pending")} pending`,
    ];
    $("summary").textContent = parts.join(" · ");
  }

  function build(s) {
    const node = cardTemplate.content.firstElementChild.cloneNode(true);
    fill(node, s);
    return node;
  }

  function fill(node, s) {
    const q = (selector) => node.querySelector(selector);
    node.id = `seg-${s.id}`;
    node.dataset.id = s.id;
    node.className = `segment ${s.cat}`;
    q(".sid").textContent = s.id;
    q(".sid").href = `#seg-${s.id}`;
    q(".where").textContent = s.voice ? `${chapterTitle(s.ch)} · spoken by ${s.voice}` : chapterTitle(s.ch);
    q(".badges").replaceChildren(...badges(s));
    words(q(".text"), q(".heard"), s);
    q(".heard-row").hidden = s.heard == null;
    q(".orig-row").hidden = s.orig == null;
    q(".orig").textContent = s.orig ?? "";
    q(".note").textContent = note(s);
    q(".note").hidden = !q(".note").textContent;
    checks(q(".checks"), s);
    q(".meta").textContent = meta(s);
    listen(node, s);
    if (data.served) actions(node, s);
  }

  function chapterTitle(number) {
    const chapter = chapters.get(number);
    return chapter ? `${number}. ${chapter.title}` : `Chapter ${number}`;
  }

  function badges(s) {
    const states = [s.cat === "ok" ? "passed" : s.cat, ...(s.queued ? ["queued"] : [])];
    return [...states.map((name) => badge(name, name)), ...s.fail.map((name) => badge(name, "check"))];
  }

  function badge(text, kind) {
    const element = marked("span", text);
    element.className = `badge ${kind}`;
    return element;
  }

  function marked(tag, text) {
    const element = document.createElement(tag);
    element.textContent = text;
    return element;
  }

  // The text with what was not heard struck out, the transcript with what was heard instead marked.
  function words(textNode, heardNode, s) {
    if (!s.diff) {
      textNode.textContent = s.text;
      heardNode.textContent = s.heard ?? "";
      return;
    }
    const ours = [];
    const theirs = [];
    for (const [tag, text, heard] of s.diff) {
      if (text) ours.push(tag === "equal" ? document.createTextNode(text) : marked("del", text));
      if (heard) theirs.push(tag === "equal" ? document.createTextNode(heard) : marked("ins", heard));
    }
    textNode.replaceChildren(...spaced(ours));
    heardNode.replaceChildren(...spaced(theirs));
  }

  function spaced(parts) {
    return parts.flatMap((part, index) => (index ? [document.createTextNode(joiner), part] : [part]));
  }

  function note(s) {
    if (s.cat === "failed") return `could not be synthesised: ${s.error ?? "unknown error"}`;
    if (s.cat === "pending") return s.queued ? "queued for a redo" : "not synthesised yet (a redo or a run is under way)";
    if (s.empty) return "no speech was generated";
    if (s.cap) return "hit its length cap (may be cut off or babble)";
    return "";
  }

  function checks(table, s) {
    const rows = s.checks.map(([check, value, comparison, limit, passed]) => {
      const row = document.createElement("tr");
      row.className = passed ? "pass" : "fail";
      for (const cell of [check, String(value), `${comparison} ${limit}`]) row.append(marked("td", cell));
      return row;
    });
    table.tBodies[0].replaceChildren(...rows);
    table.hidden = rows.length === 0;
  }

  function meta(s) {
    const parts = [`attempts ${s.attempts}`, `take ${s.take}`];
    if (s.score != null) parts.push(`score ${s.score}`);
    if (s.search) {
      const x = s.search;
      parts.push(`${x.mode} ${x.width}: ${x.candidates} candidates, ${x.tokens_generated} tokens in ${x.lm_forward_calls} LM passes ` +
        `(${Number(x.lm_seconds).toFixed(1)} s), ${x.partial_scored + x.final_scored} scored`);
    }
    if (s.accepted) parts.push(`accepted by ${s.accepted.who} on ${s.accepted.at}`);
    if (s.orig != null) parts.push("text edited in review");
    return parts.join(" · ");
  }

  function setSource(audio, source) {
    if (source == null) audio.removeAttribute("src");
    else if (audio.getAttribute("src") !== source) audio.src = source;
    audio.hidden = source == null;
  }

  function listen(node, s) {
    const q = (selector) => node.querySelector(selector);
    const chapter = chapters.get(s.ch);
    const playable = Boolean(s.span && chapter && chapter.src);
    // A media fragment plays just this segment's span of the chapter file.
    setSource(q("audio.take"), playable ? `${chapter.src}#t=${s.span[0]},${s.span[1]}` : null);
    q(".take-label").textContent = playable ? `${s.prev ? "New take" : "This take"} (${(s.span[1] - s.span[0]).toFixed(2)} s)` : "This take";
    q(".jump").hidden = !playable;
    q(".jump").onclick = () => playChapter(s.ch, s.span[0], s.id);
    q(".missing").textContent = playable ? "" : s.cat === "pending" || s.cat === "failed"
      ? "no audio yet"
      : "not placed in a chapter file yet (llasa stitch OUTDIR writes the chapters again and places it)";
    q(".previous").hidden = !s.prev;
    setSource(q("audio.prev"), s.prev ? s.prev.src : null);
    q(".prev-label").textContent = s.prev ? `Previous take (take ${s.prev.take}, kept ${s.prev.at})` : "";
  }

  function playChapter(number, start, id) {
    const chapter = chapters.get(number);
    if (!chapter || !chapter.src) return;
    player.src = `${chapter.src}#t=${start}`;
    player.dataset.chapter = String(number);
    $("player-label").textContent = id ? `${chapterTitle(number)}, from ${id}` : chapterTitle(number);
    player.play().catch(() => {});
  }

  // --- the served page: accept, redo, edit and redo, and watching for new takes ---

  async function post(action, body) {
    const response = await fetch(`api/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const reply = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw new Error(reply.error || response.statusText);
    return reply;
  }

  function actions(node, s) {
    const q = (selector) => node.querySelector(selector);
    const editor = q(".editor");
    const textarea = q(".editor textarea");
    q(".accept").hidden = s.cat !== "flagged";
    q(".redo").hidden = s.cat === "pending";
    q(".edit").hidden = s.cat === "pending";
    q(".accept").onclick = () => act(node, "accept", { id: s.id }, "accepted");
    q(".redo").onclick = () => act(node, "redo", { id: s.id }, "queued: llasa redo OUTDIR --queued speaks it");
    q(".edit").onclick = () => {
      editor.classList.toggle("open");
      textarea.value = s.text;
      textarea.focus();
    };
    q(".save-edit").onclick = () =>
      act(node, "redo", { id: s.id, text: textarea.value }, "queued with the new text: llasa redo OUTDIR --queued speaks it");
    q(".cancel-edit").onclick = () => editor.classList.remove("open");
  }

  async function act(node, action, body, done) {
    const status = node.querySelector(".action-status");
    status.className = "action-status";
    status.textContent = "saving...";
    try {
      const reply = await post(action, body);
      update(reply.segment);
      node.querySelector(".editor").classList.remove("open");
      status.textContent = done;
    } catch (error) {
      status.className = "action-status error";
      status.textContent = error.message;
    }
  }

  function update(entry) {
    const index = segments.findIndex((s) => s.id === entry.id);
    if (index < 0) return;
    segments[index] = entry;
    byId.set(entry.id, entry);
    watch(entry);
    const node = document.getElementById(`seg-${entry.id}`);
    if (node) fill(node, entry); // it stays where it is until the filters change
    summarise();
  }

  // A queued or pending segment is asked after, while it is on the page, until its new take is
  // placed in its rewritten chapter file.
  const watching = new Set();
  function watch(s) {
    if (s.queued || s.cat === "pending" || (watching.has(s.id) && !s.span && s.cat !== "failed")) watching.add(s.id);
    else watching.delete(s.id);
  }
  segments.forEach(watch);

  async function refresh() {
    const waiting = [...list.querySelectorAll(".segment")].map((node) => node.dataset.id).filter((id) => watching.has(id));
    if (!waiting.length) return;
    const response = await fetch(`api/segments?ids=${encodeURIComponent(waiting.join(","))}`);
    if (!response.ok) return;
    for (const entry of (await response.json()).segments) {
      if (JSON.stringify(entry) !== JSON.stringify(byId.get(entry.id))) update(entry);
    }
  }

  // --- controls ---

  function choose(changes) {
    Object.assign(state, changes);
    $("filter").value = state.filter;
    $("failure").value = state.failure;
    $("chapter").value = state.chapter;
    render();
  }

  $("filter").addEventListener("change", (event) => choose({ filter: event.target.value, page: 0 }));
  $("failure").addEventListener("change", (event) => choose({ failure: event.target.value, page: 0 }));
  $("chapter").addEventListener("change", (event) => choose({ chapter: event.target.value, page: 0 }));
  $("prev").addEventListener("click", () => choose({ page: state.page - 1 }));
  $("next").addEventListener("click", () => choose({ page: state.page + 1 }));
  for (const row of document.querySelectorAll("#chapters tbody tr")) {
    const number = Number(row.dataset.chapter);
    row.querySelector(".show-chapter").addEventListener("click", () => {
      choose({ filter: "all", failure: "", chapter: String(number), page: 0 });
      list.scrollIntoView();
    });
    row.querySelector(".play-chapter")?.addEventListener("click", () => playChapter(number, 0, null));
  }

  // A link to #seg-3.12 opens the page that holds that segment.
  const linked = location.hash.startsWith("#seg-") && byId.get(decodeURIComponent(location.hash.slice(5)));
  if (linked) {
    state.filter = "all";
    choose({ page: Math.floor(selection().indexOf(linked) / PAGE_SIZE) });
    document.getElementById(`seg-${linked.id}`)?.scrollIntoView();
  } else {
    choose({});
  }
  if (data.served) setInterval(refresh, 3000);
  performance.mark("ready"); // for tests and benchmarks: the first page of cards is drawn
  document.body.dataset.ready = "true";
})();
