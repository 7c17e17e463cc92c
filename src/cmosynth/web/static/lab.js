// cmosynth lab: a little plain JavaScript. Every change is a POST with the page's CSRF
// token; the server writes the reviewer's file before it answers, so a closed tab loses
// at most the decision being made.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = { error: await response.text() }; }
  if (!response.ok) { throw new Error(data.error || response.statusText); }
  return data;
}

function toast(message, error) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.className = "show" + (error ? " error" : "");
  clearTimeout(box.timer);
  box.timer = setTimeout(() => { box.className = ""; }, error ? 5000 : 1500);
}

function typing(event) {
  const t = event.target;
  return t && (t.tagName === "INPUT" && t.type === "text" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
}

// --- screen ---------------------------------------------------------------------------
function initScreen() {
  const card = document.getElementById("card");
  const progress = document.getElementById("progress");
  let busy = false;

  function reason() {
    const chosen = card.querySelector('input[name="reason"]:checked');
    if (chosen && chosen.id === "reason-other") { return document.getElementById("reason-text").value; }
    return chosen ? chosen.value : "";
  }
  function show(data) {
    card.innerHTML = data.card;
    card.dataset.record = data.record_id || "";
    progress.innerHTML = data.progress;
    window.scrollTo(0, 0);
  }
  async function decide(decision) {
    if (busy || !card.dataset.record) { return; }
    busy = true;
    try {
      const data = await post("/screen/decide", {
        record_id: card.dataset.record, decision: decision,
        reason: decision === "exclude" ? reason() : "",
      });
      show(data);
      toast(decision[0].toUpperCase() + decision.slice(1) + "d");
    } catch (error) { toast(error.message, true); } finally { busy = false; }
  }
  async function undo() {
    if (busy) { return; }
    busy = true;
    try {
      const data = await post("/screen/undo");
      show(data);
      toast(data.undone ? "Undone" : "Nothing to undo");
    } catch (error) { toast(error.message, true); } finally { busy = false; }
  }
  card.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) { return; }
    if (button.dataset.decision) { decide(button.dataset.decision); }
    if ("undo" in button.dataset) { undo(); }
  });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    const key = event.key.toLowerCase();
    if (key === "i") { decide("include"); }
    else if (key === "e") { decide("exclude"); }
    else if (key === "m") { decide("maybe"); }
    else if (key === "u") { undo(); }
    else if (key === "/") {
      event.preventDefault();
      const other = document.getElementById("reason-other");
      if (other) { other.checked = true; document.getElementById("reason-text").focus(); }
    } else if (/^[1-9]$/.test(key)) {
      const options = card.querySelectorAll('input[name="reason"]');
      const option = options[Number(key) - 1];
      if (option && option.id !== "reason-other") { option.checked = true; }
    } else { return; }
    event.preventDefault();
  });
}

// --- duplicates -------------------------------------------------------------------------
function initDuplicates() {
  const pairs = Array.from(document.querySelectorAll(".pair"));
  async function decide(pair, same) {
    try {
      await post("/duplicates/decide", { a: pair.dataset.a, b: pair.dataset.b, same: same });
      pair.classList.add("decided");
      pair.querySelector(".verdict").textContent = "You said: " + (same ? "same paper" : "different papers");
      toast(same ? "Marked as the same paper" : "Marked as different papers");
      const next = pairs[pairs.indexOf(pair) + 1];
      if (next) { next.focus(); next.scrollIntoView({ block: "start" }); }
    } catch (error) { toast(error.message, true); }
  }
  pairs.forEach((pair) => pair.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-same]");
    if (button) { decide(pair, button.dataset.same === "true"); }
  }));
  if (pairs.length) { pairs[0].focus(); }
  document.addEventListener("keydown", (event) => {
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    const pair = document.activeElement.closest ? document.activeElement.closest(".pair") : null;
    const at = pair ? pairs.indexOf(pair) : -1;
    const key = event.key.toLowerCase();
    if (key === "s" && pair) { decide(pair, true); }
    else if (key === "d" && pair) { decide(pair, false); }
    else if (key === "j" && pairs[at + 1]) { pairs[at + 1].focus(); }
    else if (key === "k" && at > 0) { pairs[at - 1].focus(); }
    else { return; }
    event.preventDefault();
  });
}

// --- code -------------------------------------------------------------------------------
function initCode() {
  const coding = document.getElementById("coding");
  if (!coding) { return; }
  const record = coding.dataset.record;

  function rolesOf(item) {
    return Array.from(item.querySelectorAll(".roles .chip.on")).map((b) => b.dataset.role);
  }
  function conceptsOf(item) {
    return Array.from(item.querySelectorAll(".concept-picker input:checked")).map((i) => i.value);
  }
  async function save(item, withConcepts) {
    try {
      await post("/code/sentence", {
        record_id: record, sentence: Number(item.dataset.sentence), roles: rolesOf(item),
        concepts: withConcepts ? conceptsOf(item) : null,
      });
      item.classList.add("coded");
      toast("Saved sentence " + item.dataset.sentence);
    } catch (error) { toast(error.message, true); }
  }
  coding.addEventListener("click", async (event) => {
    const chip = event.target.closest(".roles .chip");
    const item = event.target.closest("li.sentence");
    if (chip && item) {
      chip.classList.toggle("on");
      chip.setAttribute("aria-pressed", chip.classList.contains("on"));
      save(item, false);
    } else if (event.target.closest("[data-save-concepts]") && item) {
      await save(item, true);
      location.reload();
    } else if (event.target.id === "accept-all") {
      try {
        const data = await post("/code/accept", { record_id: record });
        toast("Accepted " + data.coded + " sentences");
        location.reload();
      } catch (error) { toast(error.message, true); }
    }
  });
  document.addEventListener("click", async (event) => {
    const unlink = event.target.closest("[data-unlink]");
    const accept = event.target.closest("[data-accept-cmoc]");
    try {
      if (unlink) {
        await post("/code/unlink", { record_id: record, label: unlink.dataset.unlink });
        location.reload();
      } else if (accept) {
        const cmoc = JSON.parse(accept.dataset.acceptCmoc);
        await post("/code/link", { record_id: record, sentences: cmoc.sentences,
          concepts: cmoc.concepts, theory_id: cmoc.theory_id, summary: "" });
        location.reload();
      }
    } catch (error) { toast(error.message, true); }
  });
  const form = document.getElementById("link");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const sentences = {}, concepts = {};
    for (const role of ["context", "mechanism", "outcome"]) {
      const number = form.elements[role].value;
      sentences[role] = number ? Number(number) : null;
      if (number) {
        const item = coding.querySelector('li.sentence[data-sentence="' + number + '"]');
        concepts[role] = item.dataset.concepts ? item.dataset.concepts.split(";") : [];
      }
    }
    try {
      const data = await post("/code/link", { record_id: record, sentences: sentences,
        concepts: concepts, theory_id: form.elements.theory_id.value,
        summary: form.elements.summary.value });
      toast("Linked " + data.label);
      location.reload();
    } catch (error) { toast(error.message, true); }
  });
}

// --- conflicts --------------------------------------------------------------------------
function initConflicts() {
  document.addEventListener("click", async (event) => {
    const article = event.target.closest("article.conflict");
    if (!article) { return; }
    const consensus = event.target.closest("[data-consensus]");
    const settle = event.target.closest("[data-settle-coding]");
    try {
      if (consensus) {
        await post("/conflicts/screening", { record_id: article.dataset.record,
          decision: consensus.dataset.consensus, reason: article.querySelector(".reason").value });
      } else if (settle) {
        const roles = Array.from(article.querySelectorAll('input[type=checkbox]:checked')).map((i) => i.value);
        await post("/conflicts/coding", { record_id: article.dataset.record,
          sentence: Number(article.dataset.sentence), roles: roles });
      } else { return; }
      toast("Consensus saved");
      location.reload();
    } catch (error) { toast(error.message, true); }
  });
}

// --- runs (overview and the coder's retraining) -----------------------------------------
function initRuns() {
  const button = document.getElementById("run") || document.getElementById("retrain");
  const state = document.getElementById("run-state");
  const log = document.getElementById("run-log");
  if (!button) { return; }
  let sawRunning = false;
  async function poll() {
    const response = await fetch("/run/status");
    const data = await response.json();
    if (data.tail.length) { log.hidden = false; log.textContent = data.tail.join("\n"); }
    if (data.running) {
      sawRunning = true;
      state.textContent = (data.label || "run") + ": running…";
      button.disabled = true;
      setTimeout(poll, 1000);
    } else if (data.returncode !== null) {
      button.disabled = false;
      state.textContent = data.returncode === 0 ? "done: the outputs follow your decisions"
        : "failed (exit " + data.returncode + "): see the log";
      if (data.returncode === 0 && button.id === "retrain" && sawRunning) {
        sawRunning = false;
        toast("The coder was retrained: suggestions updated");
        setTimeout(() => location.reload(), 800);
      }
    }
  }
  button.addEventListener("click", async () => {
    try {
      await post(button.id === "run" ? "/run" : "/code/retrain");
      poll();
    } catch (error) { toast(error.message, true); }
  });
  poll();
}

const views = { screen: initScreen, duplicates: initDuplicates, code: initCode, conflicts: initConflicts };
document.addEventListener("DOMContentLoaded", () => {
  const view = document.body.dataset.view;
  if (views[view]) { views[view](); }
  initRuns();
});
