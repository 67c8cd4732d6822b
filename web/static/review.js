// The reviewer's page: keyboard first. Items are claimed ahead (with a lease) and their scans
// decoded in the background, so the next one shows at once; decisions are sent in the background.
// Each switch is measured: performance.measure("next-item") from the key press to the next scan
// painted (tests/review/test_page.py reads these entries).
"use strict";

const PREFETCH_LOW = 20; // claim more when fewer than this many are ready (a fast reviewer outruns a slow claim)
const CLAIM_BATCH = 30;
const SVG = "http://www.w3.org/2000/svg";
const UNDO_DEPTH = 20; // decisions that can be taken back in a row (their scans stay in memory)
const KEY_STORE = "digitflow-api-key"; // the same tab-only key store as the other pages

const $ = (id) => document.getElementById(id);
const el = {
  stage: $("stage"), boxes: $("boxes"), empty: $("empty"), filename: $("filename"),
  reasons: $("reasons"), modelText: $("model-text"), confidence: $("confidence"),
  digits: $("digits"), answer: $("answer"), form: $("decide-form"), message: $("message"),
  queueSize: $("queue-size"), queueAge: $("queue-age"), done: $("done"), pace: $("pace"),
  auditError: $("audit-error"), apiKey: $("api-key"), reviewRate: $("review-rate"),
  agreement: $("agreement"),
};

const state = {
  buffer: [], // claimed items whose scans are loading or ready, in queue order
  current: null,
  decided: [], // for undo: the items decided in this tab, last one last
  skipped: new Set(),
  // Decided here: a claim answered while a decision is still on its way could hand it back.
  finished: new Set(),
  claiming: null,
  leaseSeconds: 300,
  doneCount: 0,
  startedAt: performance.now(),
  seq: 0,
};

function headers(json) {
  const h = {};
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) h.Authorization = `Bearer ${key}`;
  if (json) h["Content-Type"] = "application/json";
  return h;
}

async function api(path, body) {
  const options = body === undefined ? { headers: headers(false) }
    : { method: "POST", headers: headers(true), body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error((data && data.detail) || `${response.status} on ${path}`);
    error.code = data && data.code;
    throw error;
  }
  return data;
}

function say(text, isError) {
  el.message.textContent = text;
  el.message.classList.toggle("error", Boolean(isError));
}

function heldIds() {
  // The items in hand last: a long session's list is cut from the front (oldest decisions).
  const ids = [...state.skipped, ...state.finished, ...state.buffer.map((item) => item.document_id)];
  if (state.current) ids.push(state.current.document_id);
  return ids;
}

function preload(item) {
  // Fetched (not img.src = url) so the request carries the API key; decoded before it is needed.
  const img = new Image();
  img.className = "scan";
  img.alt = `Scan ${item.filename}`;
  img.dataset.testid = "scan";
  item.img = img;
  item.ready = fetch(item.image_url, { headers: headers(false) })
    .then((response) => {
      if (!response.ok) throw new Error(`scan: HTTP ${response.status}`);
      item.fields = fieldBoxes(response.headers.get("X-Field-Boxes"));
      return response.blob();
    })
    .then((blob) => {
      item.objectUrl = URL.createObjectURL(blob);
      img.src = item.objectUrl;
      return img.decode();
    })
    .catch(() => undefined); // a missing scan still shows its reading
  return item;
}

function forget(item) {
  if (item.objectUrl) URL.revokeObjectURL(item.objectUrl);
}

function refill() {
  if (state.claiming || state.buffer.length >= PREFETCH_LOW) return state.claiming;
  const body = { limit: CLAIM_BATCH, exclude: heldIds().slice(-500) };
  state.claiming = api("/review/claim", body)
    .then((claim) => {
      state.leaseSeconds = claim.lease_seconds;
      const held = new Set(heldIds());
      for (const item of claim.items) {
        if (!held.has(item.document_id)) state.buffer.push(preload(item));
      }
      return claim.items.length;
    })
    .catch((error) => { say(error.message, true); return 0; })
    .finally(() => { state.claiming = null; });
  return state.claiming;
}

function fieldBoxes(header) {
  // A whole page (a cheque, a document type): where each field was read, or null if not found.
  try {
    const parsed = JSON.parse(header || "{}");
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
  } catch (error) {
    return {};
  }
}

function drawFields(item, width) {
  // The field's region outlined on the whole page, with its name: a wrong box shows at once.
  Object.entries(item.fields || {}).forEach(([name, field]) => {
    const box = normaliseBox(field);
    if (!box) return;
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("class", "field");
    rect.dataset.field = name;
    rect.setAttribute("x", box.x); rect.setAttribute("y", box.y);
    rect.setAttribute("width", box.w); rect.setAttribute("height", box.h);
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("class", "field-name");
    label.setAttribute("x", box.x); label.setAttribute("y", Math.max(0, box.y - width / 200));
    label.setAttribute("font-size", Math.max(10, width / 45));
    label.textContent = name;
    el.boxes.append(rect, label);
  });
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function drawBoxes(item) {
  clear(el.boxes);
  const img = item.img;
  const width = img.naturalWidth || 1;
  const height = img.naturalHeight || 1;
  el.boxes.setAttribute("viewBox", `0 0 ${width} ${height}`);
  el.boxes.style.width = `${img.clientWidth}px`;
  el.boxes.style.height = `${img.clientHeight}px`;
  drawFields(item, width);
  item.digits.forEach((digit) => {
    const box = normaliseBox(digit.box);
    if (!box) return;
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("x", box.x); rect.setAttribute("y", box.y);
    rect.setAttribute("width", box.w); rect.setAttribute("height", box.h);
    el.boxes.appendChild(rect);
  });
}

function normaliseBox(box) {
  // Boxes come as [x, y, w, h] or {x, y, w|width, h|height} in scan pixels; none: draw nothing.
  if (!box) return null;
  if (Array.isArray(box) && box.length === 4) return { x: box[0], y: box[1], w: box[2], h: box[3] };
  if (typeof box === "object" && "x" in box) {
    return { x: box.x, y: box.y, w: box.w ?? box.width, h: box.h ?? box.height };
  }
  return null;
}

function renderReading(item) {
  el.modelText.textContent = item.model_text;
  el.confidence.textContent = `${(item.confidence * 100).toFixed(1)}% sure`;
  el.filename.textContent = item.filename;
  el.reasons.textContent = item.reasons.join(", ").replaceAll("_", " ");
  clear(el.digits);
  item.digits.forEach((digit) => {
    const li = document.createElement("li");
    const b = document.createElement("b");
    const small = document.createElement("small");
    b.textContent = digit.digit;
    small.textContent = `${(digit.confidence * 100).toFixed(1)}%`;
    li.classList.toggle("low", digit.confidence < 0.9);
    li.append(b, small);
    el.digits.appendChild(li);
  });
}

function markShown(item, startMark) {
  // Two frames: the first runs before the paint of the new scan, the second after it.
  requestAnimationFrame(() => requestAnimationFrame(() => {
    if (!startMark) return;
    performance.mark(`shown-${state.seq}`);
    performance.measure("next-item", startMark, `shown-${state.seq}`);
  }));
  el.stage.dataset.documentId = item.document_id;
}

function show(item, startMark) {
  state.current = item;
  const old = el.stage.querySelector("img.scan");
  if (old) old.replaceWith(item.img); else el.stage.insertBefore(item.img, el.boxes);
  el.empty.hidden = true;
  renderReading(item);
  el.answer.value = "";
  el.answer.focus();
  drawBoxes(item);
  markShown(item, startMark);
}

function showEmpty() {
  state.current = null;
  const old = el.stage.querySelector("img.scan");
  if (old) old.remove();
  clear(el.boxes); clear(el.digits);
  el.empty.hidden = false;
  el.empty.textContent = "Nothing to review right now.";
  el.modelText.textContent = "–"; el.confidence.textContent = ""; el.filename.textContent = "";
  el.reasons.textContent = "";
  delete el.stage.dataset.documentId;
  el.stage.dataset.empty = "true";
  if (!state.polling) { // look again later: new jobs, expired leases of other reviewers
    state.polling = setTimeout(() => { state.polling = null; if (!state.current) advance(null); }, 5000);
  }
}

async function advance(startMark) {
  let next = state.buffer.shift();
  refill();
  if (!next) {
    const claimed = await (state.claiming || refill());
    next = state.buffer.shift();
    if (!next) { showEmpty(); return claimed; }
  }
  delete el.stage.dataset.empty;
  await next.ready;
  show(next, startMark);
  refill();
  return 1;
}

function startMark() {
  state.seq += 1;
  const name = `decided-${state.seq}`;
  performance.mark(name);
  return name;
}

function decide(action, text) {
  const item = state.current;
  if (!item) return;
  const mark = startMark();
  const body = action === "correct" ? { action, text } : { action };
  item.sent = api(`/review/${item.document_id}`, body)
    .then((result) => { state.doneCount += 1; updatePace(); return result; })
    .catch((error) => { say(`${item.filename}: ${error.message}`, true); });
  state.decided.push(item);
  if (state.decided.length > UNDO_DEPTH) forget(state.decided.shift());
  state.finished.add(item.document_id);
  say(`${item.filename}: ${action === "correct" ? `corrected to ${text}` : action}`);
  advance(mark);
}

function skip() {
  const item = state.current;
  if (!item) return;
  state.skipped.add(item.document_id);
  api(`/review/${item.document_id}/release`, {}).catch(() => undefined);
  forget(item);
  say(`${item.filename}: skipped`);
  advance(startMark());
}

async function undo() {
  const item = state.decided.pop();
  if (!item) { say("Nothing to undo."); return; }
  await item.sent;
  try {
    await api(`/review/${item.document_id}/undo`, {});
  } catch (error) {
    say(`Cannot undo ${item.filename}: ${error.message}`, true);
    return;
  }
  state.finished.delete(item.document_id);
  state.doneCount = Math.max(0, state.doneCount - 1);
  updatePace();
  if (state.current) state.buffer.unshift(state.current);
  show(item, startMark());
  say(`${item.filename}: decision undone`);
}

function submitAnswer() {
  const item = state.current;
  if (!item) return;
  const text = el.answer.value.trim();
  if (text === "" || text === item.model_text) decide("accept");
  else if (/^[0-9]+$/.test(text)) decide("correct", text);
  else say("Digits only, please.", true);
}

function onKey(event) {
  if (event.target === el.apiKey || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key;
  if (key === "Enter") { event.preventDefault(); submitAnswer(); return; }
  if (/^[0-9]$/.test(key)) {
    if (document.activeElement !== el.answer) { el.answer.focus(); }
    return; // typed into the answer box
  }
  if (key === "Backspace" || key === "Tab" || key.startsWith("Arrow")) return;
  if (key === "Escape") { el.answer.value = ""; return; }
  const lower = key.toLowerCase();
  if (key.length === 1) event.preventDefault(); // letters never reach the answer box
  if (lower === "u") decide("unreadable");
  else if (lower === "s") skip();
  else if (lower === "z") undo();
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function updatePace() {
  el.done.textContent = String(state.doneCount);
  const hours = (performance.now() - state.startedAt) / 3.6e6;
  el.pace.textContent = state.doneCount ? `${Math.round(state.doneCount / Math.max(hours, 1 / 60))}/h` : "–";
}

async function refreshStats() {
  try {
    const queue = await api("/review?limit=0");
    el.queueSize.textContent = String(queue.size);
    el.queueAge.textContent = ago(queue.oldest_age_seconds);
    const metrics = await api("/review/metrics");
    el.reviewRate.textContent = metrics.review_rate === null ? "–" : `${(metrics.review_rate * 100).toFixed(1)}%`;
    el.agreement.textContent = metrics.agreement_rate === null ? "–"
      : `${(metrics.agreement_rate * 100).toFixed(0)}% of ${metrics.double_keyed}`;
    const e = metrics.auto_accept_error;
    el.auditError.textContent = e.sample
      ? `${(e.estimate * 100).toFixed(1)}% (95% CI ${(e.low * 100).toFixed(1)}–${(e.high * 100).toFixed(1)}%, n=${e.sample})`
      : "no audit sample yet";
  } catch (error) {
    say(error.message, true);
  }
}

function renewLeases() {
  const ids = heldIds().filter((id) => !state.skipped.has(id) && !state.finished.has(id));
  if (ids.length) api("/review/claims/renew", { document_ids: ids }).catch(() => undefined);
}

function start() {
  el.apiKey.value = sessionStorage.getItem(KEY_STORE) || "";
  el.apiKey.addEventListener("change", () => {
    sessionStorage.setItem(KEY_STORE, el.apiKey.value.trim());
    advance(null);
  });
  el.form.addEventListener("submit", (event) => event.preventDefault());
  el.answer.addEventListener("input", () => {
    el.answer.value = el.answer.value.replace(/[^0-9]/g, "");
  });
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", () => { if (state.current) drawBoxes(state.current); });
  advance(null);
  refreshStats();
  setInterval(refreshStats, 10000);
  setInterval(renewLeases, Math.max(state.leaseSeconds * 500, 5000));
}

start();
