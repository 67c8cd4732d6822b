// Bulk upload page: drag and drop -> POST /jobs (with upload progress) -> poll GET /jobs/{id}
// -> results table (cursor pages, needs_review filter) and a CSV link. No build step; loaded as
// an ES module, so nothing here is a global of the page.

const $ = (id) => document.getElementById(id);
const PAGE = 200;
let chosen = [];
let current = null; // { id, cursor, timer }

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function announce(text) {
  $("announce").textContent = text;
}

function choose(files) {
  chosen = Array.from(files);
  $("chosen").textContent = chosen.length
    ? `${chosen.length} file(s), ${(chosen.reduce((n, f) => n + f.size, 0) / 1048576).toFixed(1)} MB`
    : "nothing chosen yet";
  $("start").disabled = chosen.length === 0;
}

function upload(event) {
  event.preventDefault();
  if (!chosen.length) return;
  showError("");
  const form = new FormData();
  form.append("layout", $("layout").value); // before the files: the server reads in order
  for (const file of chosen) form.append("files", file, file.name);
  const request = new XMLHttpRequest();
  request.open("POST", "/jobs");
  request.setRequestHeader("Idempotency-Key", crypto.randomUUID ? crypto.randomUUID() : String(Date.now()));
  $("job").hidden = false;
  $("status").textContent = "uploading";
  $("status").dataset.status = "uploading";
  request.upload.onprogress = (e) => {
    if (e.lengthComputable) {
      $("progress").value = e.loaded / e.total;
      $("counts").textContent = `uploading ${Math.round((100 * e.loaded) / e.total)}%`;
    }
  };
  request.onload = () => {
    let body = {};
    try { body = JSON.parse(request.responseText); } catch (_) { /* not JSON */ }
    if (request.status !== 202) {
      showError(body.detail || `upload failed (${request.status})`);
      $("status").textContent = "refused";
      return;
    }
    choose([]);
    openJob(body.id, body);
    loadRecent();
  };
  request.onerror = () => showError("the upload did not reach the server");
  $("start").disabled = true;
  request.send(form);
}

function openJob(id, job) {
  if (current && current.timer) clearTimeout(current.timer);
  current = { id, cursor: null, timer: null, finished: false };
  history.replaceState(null, "", `#job=${id}`);
  $("job").hidden = false;
  $("job-id").textContent = id;
  $("results").tBodies[0].replaceChildren();
  $("more").hidden = true;
  updateCsv();
  if (job) render(job);
  poll();
}

function render(job) {
  $("status").textContent = job.status.replace("_", " ");
  $("status").dataset.status = job.status;
  $("progress").value = job.progress;
  $("counts").textContent =
    `${job.done} of ${job.total} done · ${job.failed} failed · ${job.needs_review} need review`;
  const rejected = job.rejected || [];
  $("rejected-box").hidden = rejected.length === 0;
  $("rejected-count").textContent = rejected.length;
  $("rejected").replaceChildren(
    ...rejected.map((r) => {
      const li = document.createElement("li");
      li.textContent = `${r.filename}: ${r.reason}`;
      return li;
    }),
  );
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
  if (response && response.status === 404) return showError("no such job");
  if (!response || !response.ok) {
    const wait = Math.min(RETRY_MAX_SECONDS, 2 ** failures);
    showError(`could not read the job (${response ? response.status : "no connection"}); retrying in ${wait} s`);
    current.timer = setTimeout(() => poll(failures + 1), 1000 * wait);
    return;
  }
  if (failures) showError("");
  const job = await response.json();
  render(job);
  if (job.finished_at) {
    current.finished = true;
    announce(`Job ${job.status.replace("_", " ")}: ${job.succeeded} read, ${job.failed} failed.`);
    loadResults(true);
    loadRecent();
  } else {
    current.timer = setTimeout(poll, 1000 * Number(response.headers.get("Retry-After") || 1));
  }
}

function updateCsv() {
  const filter = $("filter").value;
  $("csv").href = `/jobs/${current.id}/results?format=csv${filter ? `&needs_review=${filter}` : ""}`;
}

async function loadResults(reset) {
  if (reset) {
    current.cursor = null;
    $("results").tBodies[0].replaceChildren();
  }
  const params = new URLSearchParams({ limit: PAGE });
  if ($("filter").value) params.set("needs_review", $("filter").value);
  if (current.cursor) params.set("cursor", current.cursor);
  const response = await fetch(`/jobs/${current.id}/results?${params}`);
  if (!response.ok) return showError(`could not read the results (${response.status})`);
  const page = await response.json();
  const rows = page.items.map((r) => {
    const tr = document.createElement("tr");
    if (r.needs_review) tr.className = "review";
    if (r.status === "failed") tr.className = "failed";
    const cells = [
      r.position + 1,
      r.filename,
      r.text ?? "–",
      r.confidence == null ? "–" : `${(100 * r.confidence).toFixed(1)}%`,
      r.needs_review ? "needs review" : r.needs_review === false ? "ok" : "",
      r.status === "failed" ? `failed: ${r.error}` : r.status,
    ];
    cells.forEach((value, i) => {
      const td = document.createElement("td");
      td.textContent = value;
      if (i === 2) td.className = "text";
      tr.append(td);
    });
    return tr;
  });
  $("results").tBodies[0].append(...rows);
  current.cursor = page.next_cursor;
  $("more").hidden = !page.next_cursor;
}

async function loadRecent() {
  const response = await fetch("/jobs?limit=10");
  if (!response.ok) return;
  const { items } = await response.json();
  $("recent").replaceChildren(
    ...items.map((job) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = `#job=${job.id}`;
      a.textContent = `${new Date(job.created_at).toLocaleString()} — ${job.total} documents, ${job.status.replace("_", " ")}`;
      a.onclick = (e) => { e.preventDefault(); openJob(job.id); };
      li.append(a);
      return li;
    }),
  );
}

function init() {
  const zone = $("dropzone");
  zone.onclick = () => $("files").click();
  zone.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("files").click(); } };
  zone.ondragover = (e) => { e.preventDefault(); zone.classList.add("over"); };
  zone.ondragleave = () => zone.classList.remove("over");
  zone.ondrop = (e) => { e.preventDefault(); zone.classList.remove("over"); choose(e.dataTransfer.files); };
  $("files").onchange = (e) => choose(e.target.files);
  $("upload-form").onsubmit = upload;
  $("filter").onchange = () => { updateCsv(); if (current.finished) loadResults(true); };
  $("more").onclick = () => loadResults(false);
  const match = location.hash.match(/job=([0-9a-f-]{36})/);
  if (match) openJob(match[1]);
  loadRecent();
}

init();
