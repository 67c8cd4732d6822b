// The drawing canvas: strokes in dark ink on a transparent canvas, sent as a PNG data URL after
// every stroke. The server finds the digits (one or several side by side), crops, centres and
// normalises each; here the drawing is only scaled down. The answer is the string read, with
// each digit's confidence.
"use strict";

(() => {
  const byId = (id) => document.getElementById(id);
  // The page's elements, in the order of their ids below (web/templates/index.html).
  const [canvas, result, prediction, confidence, review, error, bars, barsHeading, digitList,
    reasons, model, announce, upload, preview] = [
    "canvas", "result", "prediction", "confidence", "review", "error", "bars", "bars-heading",
    "digits", "reasons", "model", "announce", "upload", "preview",
  ].map(byId);
  const ctx = canvas.getContext("2d");
  // Shown before any answer: a question mark, not a dash that reads like an empty bar.
  const IDLE_ANSWER = "?";

  const INK = "#111827";
  const LINE_WIDTH = 18; // in canvas pixels (the canvas is 420x280 whatever its size on screen)
  // The model sees a 20x20 digit, so the drawing is sent at half the canvas's resolution: a
  // quarter of the pixels for the server to decode and for a phone to upload.
  const SEND_WIDTH = canvas.width / 2;
  const SEND_HEIGHT = canvas.height / 2;
  const sendCanvas = document.createElement("canvas");
  sendCanvas.width = SEND_WIDTH;
  sendCanvas.height = SEND_HEIGHT;
  const sendCtx = sendCanvas.getContext("2d");
  let drawing = null; // the pointer drawing the current stroke
  let last = null;
  let sequence = 0; // answers to older requests are ignored

  // Ten bars, built once.
  const barFills = [];
  const barValues = [];
  for (let d = 0; d < 10; d++) {
    const li = document.createElement("li");
    li.innerHTML = `<span aria-hidden="true">${d}</span><div class="bar"><span></span></div><span class="pct">–</span>`;
    li.setAttribute("aria-label", `digit ${d}`);
    bars.appendChild(li);
    barFills.push(li.querySelector(".bar span"));
    barValues.push(li.querySelector(".pct"));
  }

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) / box.width) * canvas.width,
      y: ((event.clientY - box.top) / box.height) * canvas.height,
    };
  }

  function segment(from, to) {
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  }

  function dot(at) {
    ctx.beginPath();
    ctx.arc(at.x, at.y, LINE_WIDTH / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  ctx.lineWidth = LINE_WIDTH;
  ctx.fillStyle = INK;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = INK;

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    drawing = event.pointerId;
    last = point(event);
    dot(last); // a tap leaves a mark too
    preview.hidden = true;
  });

  canvas.addEventListener("pointermove", (event) => {
    if (event.pointerId !== drawing) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) {
      const next = point(e);
      segment(last, next);
      last = next;
    }
  });

  function drawingDataURL() {
    sendCtx.clearRect(0, 0, SEND_WIDTH, SEND_HEIGHT);
    sendCtx.drawImage(canvas, 0, 0, SEND_WIDTH, SEND_HEIGHT);
    return sendCanvas.toDataURL("image/png");
  }

  function endStroke(event) {
    if (event.pointerId !== drawing) return;
    drawing = null;
    predict(() =>
      fetch("/predict-drawing", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ image: drawingDataURL() }),
      })
    );
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  byId("clear").addEventListener("click", () => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    sequence++;
    reset("Draw a digit to start.");
    announce.textContent = "Canvas cleared.";
  });

  upload.addEventListener("change", () => {
    const file = upload.files[0];
    if (!file) return;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    const form = new FormData();
    form.append("file", file);
    upload.value = "";
    predict(() => fetch("/predict", { method: "POST", body: form }), "upload");
  });

  // What the last request read: "drawing" or "upload" (a blank upload is not "draw a digit").
  let source = "drawing";

  async function predict(send, from = "drawing") {
    source = from;
    const mine = ++sequence;
    result.dataset.state = "pending";
    let answer;
    try {
      const response = await send();
      answer = { ok: response.ok, body: await response.json() };
    } catch (failure) {
      answer = { ok: false, body: { detail: `The server could not be reached (${failure.message}).` } };
    }
    if (mine !== sequence) return; // a newer stroke or a Clear came in meanwhile
    if (answer.ok) show(answer.body);
    else fail(answer.body);
  }

  const REASONS = {
    low_confidence: "low confidence",
    not_a_digit: "a mark that may not be a digit",
    ambiguous_segmentation: "unsure where one digit ends and the next begins",
    too_many_digits: "more digits than a field holds",
  };

  function showDigits(p) {
    digitList.replaceChildren(
      ...p.digits.map((d, i) => {
        const li = document.createElement("li");
        const pct = (d.confidence * 100).toFixed(1);
        li.innerHTML = `<b>${d.digit}</b><span>${pct}%</span>`;
        li.dataset.testid = "digit";
        li.setAttribute("aria-label", `digit ${i + 1}: ${d.digit}, confidence ${pct}%`);
        li.classList.toggle("doubtful", d.confidence < 0.9);
        return li;
      })
    );
  }

  function showBars(p) {
    // The ten probabilities of a single digit; for a field, those of its first digit.
    barsHeading.textContent = p.digits.length > 1
      ? "Probability of each digit (first digit of the field)"
      : "Probability of each digit";
    p.probabilities.forEach((value, d) => {
      barFills[d].style.width = `${(value * 100).toFixed(1)}%`;
      barValues[d].textContent = `${(value * 100).toFixed(1)}%`;
      barFills[d].parentElement.parentElement.classList.toggle("top", d === p.digit);
      barFills[d].parentElement.parentElement.setAttribute("aria-label", `digit ${d}: ${(value * 100).toFixed(1)}%`);
    });
  }

  function show(p) {
    result.dataset.state = "done";
    error.hidden = true;
    prediction.textContent = p.text;
    const pct = (p.confidence * 100).toFixed(1);
    confidence.textContent = `Confidence ${pct}%`;
    review.hidden = !p.needs_review;
    reasons.hidden = !p.needs_review;
    reasons.textContent = p.review_reasons.map((r) => REASONS[r] || r).join("; ");
    result.classList.toggle("needs-review", p.needs_review);
    showDigits(p);
    showBars(p);
    model.textContent = `Model ${p.model_version}`;
    announce.textContent = `Predicted ${p.text}, confidence ${pct} percent` +
      (p.needs_review ? `. Needs review: ${reasons.textContent}.` : ".");
  }

  function fail(body) {
    let message = typeof body.detail === "string" ? body.detail : "The image could not be read.";
    if (body.code === "no_digits") message = "No digit found: only dots, dashes or lines.";
    const empty = body.code === "empty_image";
    const uploaded = source === "upload";
    reset(empty && !uploaded ? "Draw a digit to start." : "", uploaded);
    result.dataset.state = "error";
    if (empty) {
      error.textContent = uploaded
        ? "The uploaded image is blank: no ink was found on it. Try another scan or photo."
        : "There is nothing to read yet: draw a digit.";
    } else {
      error.textContent = message;
    }
    error.hidden = false;
    announce.textContent = error.textContent;
  }

  function reset(text, keepPreview = false) {
    result.dataset.state = "idle";
    result.classList.remove("needs-review");
    prediction.textContent = IDLE_ANSWER;
    confidence.textContent = text;
    model.textContent = "";
    review.hidden = true;
    reasons.hidden = true;
    digitList.replaceChildren();
    error.hidden = true;
    preview.hidden = !keepPreview;
    barFills.forEach((fill) => (fill.style.width = "0"));
    barValues.forEach((value) => (value.textContent = "–"));
  }
})();
