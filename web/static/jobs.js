// Bulk upload page: choose or drop files -> POST /jobs (with upload progress) -> poll GET /jobs/{id}
// -> results table (cursor pages, needs_review filter) and a CSV link. No build step; loaded as
// an ES module, so nothing here is a global of the page.

const $ = (id) => document.getElementById(id);
const PAGE = 200;
const RECENT = 10;
let chosen = [];
let current = null; // { id, job, cursor, shown, timer, finished }
const names = new Map(); // job id -> first file's name (it never changes)

// --- words -------------------------------------------------------------------------------------

const number = (n) => n.toLocaleString();
const plural = (n, one, many = `${one}s`) => `${number(n)} ${n === 1 ? one : many}`;
const needReview = (n) => (n ? `${number(n)} ${n === 1 ? "needs" : "need"} review` : "nothing to review");
const size = (bytes) =>
  bytes < 1048576 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1048576).toFixed(1)} MB`;
const when = (iso) =>
  new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

function jobName(job) {
  const first = names.get(job.id);
  if (!first) return job.total ? `Job of ${plural(job.total, "document")}` : "Upload in progress";
  return job.total > 1 ? `${first} and ${number(job.total - 1)} more` : first;
}

const pendingReview = (job) => job.review_pending ?? job.needs_review;

// What the badge says and its colour: a finished job is a clean success only when every file was
// read and nothing waits for a person.
function badge(job) {
  if (job.status === "uploading") return ["working", "Uploading"];
  if (!job.finished_at) return ["working", job.status === "queued" ? "Queued" : "Reading"];
  if (job.status === "failed") return ["failed", "Failed"];
  const refused = (job.rejected || []).length;
  if (job.failed > 0 || refused > 0 || job.status === "partially_succeeded") {
    return ["partial", "Partly succeeded"];
  }
  if (pendingReview(job) > 0) return ["review", "Needs review"];
  return ["success", job.needs_review > 0 ? "Reviewed" : "Succeeded"];
}

function countsText(job) {
  const refused = (job.rejected || []).length;
  const parts = [];
  if (job.finished_at) parts.push(`${plural(job.total, "document")} read`);
  else parts.push(`${number(job.done)} of ${plural(job.total, "document")} read`);
  if (job.failed) parts.push(`${number(job.failed)} failed`);
  parts.push(needReview(pendingReview(job)));
  if (job.reviewed) parts.push(`${number(job.reviewed)} reviewed`);
  if (refused) parts.push(`${plural(refused, "file")} refused at upload`);
  return parts.join(" · ");
}

function setBadge(element, job) {
  const [state, text] = badge(job);
  if (element.id === "status") $("job").dataset.state = state; // tints the progress bar
  element.dataset.state = state;
  element.dataset.status = job.status;
  element.dataset.finished = String(Boolean(job.finished_at));
  element.textContent = text;
}

// Why a request failed, in words: a status the user can act on, else its number.
const PROBLEMS = {
  401: "an API key is needed (enter it in the key box at the top)",
  403: "this API key is not allowed to do that",
  429: "too many requests (wait a moment)",
  503: "the service is starting or unavailable",
};
const problem = (status) => (status ? PROBLEMS[status] || `the server answered ${status}` : "no connection");
const sentence = (text) => `${text[0].toUpperCase()}${text.slice(1)}`;

function announce(text) {
  $("announce").textContent = text;
}

// --- messages ----------------------------------------------------------------------------------

function fileReasons(list, items) {
  list.replaceChildren(
    ...items.map((r) => {
      const li = document.createElement("li");
      const name = document.createElement("strong");
      name.textContent = r.filename;
      li.append(name, `: ${r.reason}`);
      return li;
    }),
  );
  list.hidden = items.length === 0;
  // A long list scrolls in its own box, which then has to be reachable by keyboard.
  if (items.length > 8) list.setAttribute("tabindex", "0");
  else list.removeAttribute("tabindex");
  list.classList.toggle("scrolls", items.length > 8);
}

function showError(title, detail = "", files = []) {
  $("error").hidden = !title;
  $("error-title").textContent = title;
  $("error-detail").textContent = detail;
  $("error-detail").hidden = !detail;
  fileReasons($("error-files"), files);
}

function refusal(request) {
  let body = {};
  try { body = JSON.parse(request.responseText); } catch (_) { /* not JSON */ }
  const files = body.rejected || [];
  if (files.length) {
    const title = `No job created: ${files.length === 1 ? "the file" : `none of the ${files.length} files`} could be read`;
    return [title, "Nothing was kept. The reason for each file:", files];
  }
  return ["Upload refused", body.detail || `${sentence(problem(request.status))}.`, []];
}

// --- choosing and uploading -------------------------------------------------------------------

function choose(files) {
  chosen = Array.from(files);
  const bytes = chosen.reduce((n, f) => n + f.size, 0);
  $("chosen").textContent = chosen.length
    ? `${plural(chosen.length, "file")} chosen (${size(bytes)})`
    : "nothing chosen yet";
  $("start").disabled = chosen.length === 0;
}

function upload(event) {
  event.preventDefault();
  if (!chosen.length) return;
  const files = chosen;
  showError("");
  const form = new FormData();
  form.append("layout", $("layout").value); // before the files: the server reads in order
  for (const file of files) form.append("files", file, file.name);
  const request = new XMLHttpRequest();
  request.open("POST", "/jobs");
  request.setRequestHeader("Idempotency-Key", crypto.randomUUID ? crypto.randomUUID() : String(Date.now()));
  showUploading(files);
  request.upload.onprogress = (e) => {
    if (!e.lengthComputable) return;
    $("progress").value = e.loaded / e.total;
    $("counts").textContent = `Uploading ${plural(files.length, "file")} · ${Math.round((100 * e.loaded) / e.total)}%`;
  };
  // Leaving the page mid-upload would drop it: the browser asks first.
  const guard = (e) => { e.preventDefault(); e.returnValue = ""; };
  window.addEventListener("beforeunload", guard);
  request.onloadend = () => window.removeEventListener("beforeunload", guard);
  request.onload = () => uploaded(request);
  request.onerror = () => uploadFailed("The upload did not reach the server", "Check the connection and try again.");
  $("start").disabled = true;
  $("start").textContent = "Uploading…";
  request.send(form);
}

function showUploading(files) {
  stopPolling();
  current = null;
  $("job").hidden = false;
  $("job").setAttribute("aria-busy", "true");
  $("job-heading").textContent = files.length > 1 ? `${files[0].name} and ${number(files.length - 1)} more` : files[0].name;
  $("job-when").textContent = "Uploading now";
  $("job-id-line").hidden = true;
  setBadge($("status"), { status: "uploading", rejected: [] });
  $("progress").value = 0;
  $("progress").removeAttribute("value"); // indeterminate until the first progress event
  $("counts").textContent = `Uploading ${plural(files.length, "file")}…`;
  $("rejected-box").hidden = true;
  $("job-error").hidden = true;
  clearResults("Results appear here when the job has finished.");
}

function resetButton() {
  $("start").textContent = "Upload and read";
  $("start").disabled = chosen.length === 0;
}

function uploadFailed(title, detail, files = []) {
  $("job").hidden = true;
  $("job").removeAttribute("aria-busy");
  resetButton();
  showError(title, detail, files);
  $("error-title").focus();
}

function uploaded(request) {
  if (request.status !== 202) return uploadFailed(...refusal(request));
  let job = null;
  try { job = JSON.parse(request.responseText); } catch (_) { /* handled below */ }
  if (!job) return uploadFailed("Upload failed", "The server's answer could not be read.");
  choose([]);
  resetButton();
  openJob(job.id, job);
  $("job-heading").focus(); // the keyboard continues from the job it just created
  const refused = (job.rejected || []).length;
  announce(refused
    ? `Job created with ${plural(job.total, "document")}; ${plural(refused, "file")} refused.`
    : `Job created with ${plural(job.total, "document")}.`);
  loadRecent();
}

// --- one job -------------------------------------------------------------------------------------

function stopPolling() {
  if (current && current.timer) clearTimeout(current.timer);
}

function openJob(id, job) {
  stopPolling();
  current = { id, job: null, cursor: null, shown: 0, timer: null, finished: false };
  history.replaceState(null, "", `#job=${id}`);
  $("job").hidden = false;
  $("job").setAttribute("aria-busy", "true");
  $("job-id").textContent = id;
  $("job-id-line").hidden = false;
  $("copied").textContent = "";
  if (!job) {
    $("job-heading").textContent = "Loading the job…";
    $("counts").textContent = "";
  }
  clearResults("Results appear here when the job has finished.");
  markRecent();
  if (job) render(job);
  nameOf(id).then(() => current && current.id === id && current.job && render(current.job));
  poll();
}

function render(job) {
  current.job = job;
  $("job-heading").textContent = jobName(job);
  $("job-when").textContent = `Uploaded ${when(job.created_at)}`;
  setBadge($("status"), job);
  $("progress").value = job.progress;
  $("counts").textContent = countsText(job);
  const rejected = job.rejected || [];
  $("rejected-box").hidden = rejected.length === 0;
  $("rejected-title").textContent = `${plural(rejected.length, "file")} refused at upload; the other ${plural(job.total, "document")} ${job.total === 1 ? "was" : "were"} accepted`;
  fileReasons($("rejected"), rejected);
  $("job-error").hidden = !job.error;
  $("job-error").textContent = job.error ? `The job failed: ${job.error}` : "";
  updateCsv();
}

// Polling survives a server restart or a network blip: it says so and tries again, slower.
const RETRY_MAX_SECONDS = 30;

async function poll(failures = 0) {
  const id = current.id;
  let response = null;
  try {
    response = await fetch(`/jobs/${id}`);
  } catch (_) { /* network error: retried below */ }
  if (!current || current.id !== id) return;
  if (response && response.status === 404) return jobMissing();
  if (!response || !response.ok) {
    const wait = Math.min(RETRY_MAX_SECONDS, 2 ** failures);
    showError("Could not read the job", `${sentence(problem(response && response.status))}; retrying in ${wait} s.`);
    current.timer = setTimeout(() => poll(failures + 1), 1000 * wait);
    return;
  }
  if (failures) showError("");
  const job = await response.json();
  if (!current || current.id !== id) return;
  render(job);
  if (job.finished_at) return finished(job);
  current.timer = setTimeout(() => poll(), 1000 * Number(response.headers.get("Retry-After") || 1));
}

function jobMissing() {
  $("job").hidden = true;
  showError("No such job", "It may have been deleted, or the link is from another installation.");
}

function finished(job) {
  current.finished = true;
  $("job").removeAttribute("aria-busy");
  announce(`${jobName(job)}: ${badge(job)[1]}. ${countsText(job)}.`);
  loadResults(true);
  loadRecent();
}

// The results of a filtered view have a file name that says so (the server's Content-Disposition).
const FILTERS = { "": "", true: " (needs review only)", false: " (confident only)" };

function updateCsv() {
  const job = current && current.job;
  const ready = Boolean(job && job.finished_at && job.done > 0);
  const filter = $("filter").value;
  $("csv").hidden = !ready;
  $("csv-wait").hidden = ready;
  $("csv-wait").textContent = job && job.finished_at ? "No results to download" : "CSV download once the job has finished";
  $("csv").textContent = `Download CSV${FILTERS[filter]}`;
  if (job) $("csv").href = `/jobs/${job.id}/results?format=csv${filter ? `&needs_review=${filter}` : ""}`;
}

function expected(job) {
  const filter = $("filter").value;
  if (filter === "true") return job.needs_review;
  if (filter === "false") return job.succeeded - job.needs_review;
  return job.total;
}

// --- the results table ----------------------------------------------------------------------------

function messageRow(text) {
  const tr = document.createElement("tr");
  tr.className = "message-row";
  const td = document.createElement("td");
  td.colSpan = 6;
  td.textContent = text;
  tr.append(td);
  return tr;
}

function clearResults(text) {
  $("results").tBodies[0].replaceChildren(...(text ? [messageRow(text)] : []));
  $("more").hidden = true;
  $("shown").textContent = "";
  $("table-wrap").scrollTop = 0;
}

function resultRow(r) {
  const tr = document.createElement("tr");
  if (r.needs_review) tr.className = "review";
  if (r.status === "failed") tr.className = "failed";
  const review = r.review_status && r.review_status !== "not_needed" && r.review_status !== "pending"
    ? r.review_status : r.needs_review ? "needs review" : r.needs_review === false ? "ok" : "";
  const cells = [
    r.position + 1,
    r.filename,
    r.final_text ?? r.text ?? "—",
    r.confidence == null ? "—" : `${(100 * r.confidence).toFixed(1)}%`,
    review,
    r.status === "failed" ? `failed: ${r.error}` : r.status,
  ];
  cells.forEach((value, i) => {
    const td = document.createElement("td");
    td.textContent = value;
    if (i === 2) td.className = "text";
    tr.append(td);
  });
  return tr;
}

async function loadResults(reset) {
  const id = current.id;
  if (reset) {
    current.cursor = null;
    current.shown = 0;
    clearResults("Loading results…");
  }
  $("more").disabled = true;
  const params = new URLSearchParams({ limit: PAGE });
  if ($("filter").value) params.set("needs_review", $("filter").value);
  if (current.cursor) params.set("cursor", current.cursor);
  let response = null;
  try { response = await fetch(`/jobs/${id}/results?${params}`); } catch (_) { /* below */ }
  if (!current || current.id !== id) return;
  $("more").disabled = false;
  if (!response || !response.ok) {
    const why = problem(response && response.status);
    if (reset) clearResults(`Could not load the results (${why}).`);
    return showError("Could not load the results", `${sentence(why)}; choose the filter again to retry.`);
  }
  const page = await response.json();
  showResults(page, reset);
}

const EMPTY = { "": "No results in this job.", true: "No result needs review.", false: "No confident result." };

function showResults(page, reset) {
  const body = $("results").tBodies[0];
  if (reset) body.replaceChildren();
  body.append(...page.items.map(resultRow));
  current.shown += page.items.length;
  current.cursor = page.next_cursor;
  if (current.shown === 0) body.replaceChildren(messageRow(EMPTY[$("filter").value]));
  $("more").hidden = !page.next_cursor;
  const total = current.job ? expected(current.job) : current.shown;
  $("shown").textContent = current.shown
    ? `Showing ${number(current.shown)} of ${plural(Math.max(total, current.shown), "result")}`
    : "";
}

// --- recent jobs -------------------------------------------------------------------------------

async function nameOf(id) {
  if (names.has(id)) return names.get(id);
  try {
    const response = await fetch(`/jobs/${id}/results?limit=1`);
    if (!response.ok) return null;
    const first = (await response.json()).items[0];
    if (first) names.set(id, first.filename);
  } catch (_) { /* the job keeps its generic name */ }
  return names.get(id) || null;
}

function recentItem(job) {
  const li = document.createElement("li");
  li.dataset.id = job.id;
  const a = document.createElement("a");
  a.href = `#job=${job.id}`;
  a.textContent = jobName(job);
  a.onclick = (e) => {
    e.preventDefault();
    openJob(job.id);
    $("job-heading").focus();
  };
  const state = document.createElement("span");
  state.className = "status-badge small";
  setBadge(state, job);
  const meta = document.createElement("span");
  meta.className = "recent-meta";
  meta.textContent = `${when(job.created_at)} · ${countsText(job)}`;
  li.append(a, " ", state, meta);
  return li;
}

function markRecent() {
  for (const li of $("recent").children) {
    const link = li.querySelector("a");
    if (current && li.dataset.id === current.id) link.setAttribute("aria-current", "true");
    else link.removeAttribute("aria-current");
  }
}

async function loadRecent() {
  let response = null;
  try { response = await fetch(`/jobs?limit=${RECENT}`); } catch (_) { /* below */ }
  if (!response || !response.ok) {
    $("recent-state").hidden = false;
    $("recent-state").textContent = `Could not load the recent jobs: ${problem(response && response.status)}.`;
    return;
  }
  const { items } = await response.json();
  await Promise.all(items.map((job) => nameOf(job.id)));
  $("recent-state").hidden = items.length > 0;
  $("recent-state").textContent = "No jobs yet. Upload some scans above and they will be listed here.";
  $("recent").replaceChildren(...items.map(recentItem));
  markRecent();
}

// --- wiring ------------------------------------------------------------------------------------

function copyId() {
  const id = $("job-id").textContent;
  const done = (text) => { $("copied").textContent = text; };
  if (navigator.clipboard) {
    navigator.clipboard.writeText(id).then(() => done("Copied"), () => selectId(done));
  } else selectId(done);
}

function selectId(done) {
  const range = document.createRange();
  range.selectNodeContents($("job-id"));
  getSelection().removeAllRanges();
  getSelection().addRange(range);
  done("Selected: press Ctrl+C to copy");
}

function init() {
  const zone = $("dropzone");
  zone.ondragover = (e) => { e.preventDefault(); zone.classList.add("over"); };
  zone.ondragleave = () => zone.classList.remove("over");
  zone.ondrop = (e) => { e.preventDefault(); zone.classList.remove("over"); choose(e.dataTransfer.files); };
  $("files").onchange = (e) => choose(e.target.files);
  $("upload-form").onsubmit = upload;
  $("filter").onchange = () => {
    if (!current) return;
    updateCsv();
    if (current.finished) loadResults(true);
  };
  $("more").onclick = async () => {
    await loadResults(false);
    if ($("more").hidden) $("table-wrap").focus(); // the button went away: stay with the results
  };
  $("copy-id").onclick = copyId;
  const match = location.hash.match(/job=([0-9a-f-]{36})/);
  if (match) openJob(match[1]);
  loadRecent();
}

init();
