// Training dashboard: live curves, run status and controls. Plain ES module, no CDN, no build step.
// Python holds the state in traitlets (runs, status, log_scale, notice); buttons send commands back.

function fmt(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  const a = Math.abs(value);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return value.toExponential(2);
  return Number(value.toPrecision(digits)).toString();
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${r}s` : `${r}s`;
}

function tickStep(lo, hi, count, minStep = 0) {
  const step0 = Math.max((hi - lo) / count, minStep);
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
}

function niceTicks(lo, hi, count, minStep = 0) {
  if (!(hi > lo)) return [lo];
  const step = tickStep(lo, hi, count, minStep);
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) ticks.push(t);
  return ticks;
}

// Enough decimals to tell neighbouring ticks apart (5.02, 5.03, not 5.02, 5.02).
function tickLabel(value, step) {
  const a = Math.abs(value);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return value.toExponential(2);
  const decimals = Math.max(0, Math.min(8, -Math.floor(Math.log10(step))));
  return value.toFixed(decimals);
}

const NARROW = 720, TINY = 420; // dashboard widths (px) below which the side charts stack

// The static copy of the curves stays in a saved notebook for readers with no kernel; where this view
// renders, it hides it (only this dashboard's: the class is its id). The rule goes with the view.
function hideStaticSnapshot(id) {
  if (!/^[A-Za-z][\w-]*$/.test(id || "")) return () => {};
  const style = document.createElement("style");
  style.dataset.wbHides = id;
  style.textContent = `.${id} { display: none !important; }
.jp-OutputArea-child:has(> .jp-OutputArea-output > .${id}) { display: none; }`; // its row in Lab, Notebook 7
  document.head.appendChild(style);
  return () => style.remove();
}

const DASHES = ["6 3", "2 3", "8 3 2 3"]; // the parts of a loss of several parts, one pattern each

// One line chart: several series, each {x: [], y: [], color, width, opacity, dots, dash}.
function drawChart(container, { title, series, logY = false, height = 180 }) {
  container.replaceChildren();
  const width = Math.max(160, container.clientWidth || 420);
  const pad = { l: 52, r: 10, t: 20, b: 24 };
  const svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "wb-chart", role: "img" });
  svg.appendChild(Object.assign(svgEl("title"), { textContent: title }));
  const heading = svgEl("text", { x: pad.l, y: 13, class: "wb-chart-title" });
  heading.textContent = title;
  svg.appendChild(heading);

  const tf = (y) => (logY ? Math.log10(y) : y);
  let xs = [], ys = [];
  for (const s of series) {
    for (let i = 0; i < s.x.length; i++) {
      const y = s.y[i];
      if (y === null || !Number.isFinite(y) || (logY && y <= 0)) continue;
      xs.push(s.x[i]);
      ys.push(tf(y));
    }
  }
  let points = 0;
  if (xs.length === 0) {
    const empty = svgEl("text", { x: width / 2, y: height / 2, class: "wb-chart-empty", "text-anchor": "middle" });
    empty.textContent = "waiting for the first log step";
    svg.appendChild(empty);
    svg.dataset.points = "0";
    container.appendChild(svg);
    return;
  }
  let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const ySpan = y1 - y0; y0 -= ySpan * 0.05; y1 += ySpan * 0.05;
  const px = (x) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const py = (y) => height - pad.b - ((tf(y) - y0) / (y1 - y0)) * (height - pad.t - pad.b);

  const axes = svgEl("g", { class: "wb-axes" });
  const yStep = tickStep(y0, y1, 4);
  for (const t of niceTicks(y0, y1, 4)) {
    const yy = height - pad.b - ((t - y0) / (y1 - y0)) * (height - pad.t - pad.b);
    axes.appendChild(svgEl("line", { x1: pad.l, x2: width - pad.r, y1: yy, y2: yy, class: "wb-grid" }));
    const label = svgEl("text", { x: pad.l - 4, y: yy + 3, "text-anchor": "end" });
    label.textContent = logY ? fmt(Math.pow(10, t), 3) : tickLabel(t, yStep);
    axes.appendChild(label);
  }
  for (const t of niceTicks(x0, x1, 5, 1)) { // steps are whole numbers
    const label = svgEl("text", { x: px(t), y: height - 6, "text-anchor": "middle" });
    label.textContent = String(Math.round(t));
    axes.appendChild(label);
  }
  svg.appendChild(axes);

  for (const s of series) {
    let d = "";
    let n = 0;
    for (let i = 0; i < s.x.length; i++) {
      const y = s.y[i];
      if (y === null || !Number.isFinite(y) || (logY && y <= 0)) continue;
      d += `${n === 0 ? "M" : "L"}${px(s.x[i]).toFixed(1)},${py(y).toFixed(1)}`;
      n++;
      if (s.dots) {
        const dot = svgEl("circle", { cx: px(s.x[i]), cy: py(y), r: 3, fill: s.color, opacity: s.opacity ?? 1 });
        dot.appendChild(Object.assign(svgEl("title"), { textContent: `${s.label} @ ${s.x[i]}: ${fmt(y)}` }));
        svg.appendChild(dot);
      }
    }
    if (s.counted) points += n;
    if (!s.dots && n > 0) {
      const path = svgEl("path", { d, fill: "none", stroke: s.color, "stroke-width": s.width ?? 1.5,
        opacity: s.opacity ?? 1, class: "wb-line" });
      if (s.dash) path.setAttribute("stroke-dasharray", s.dash);
      path.appendChild(Object.assign(svgEl("title"), { textContent: s.label }));
      svg.appendChild(path);
    }
  }
  svg.dataset.points = String(points);
  container.appendChild(svg);
}

function render({ model, el: host }) {
  const root = el("div", "wb-dashboard");
  const header = el("div", "wb-header");
  const title = el("span", "wb-title", "Training");
  const badge = el("span", "wb-badge", "created");
  const message = el("span", "wb-message", "");
  header.append(title, badge, message);

  const notice = el("div", "wb-notice", "");
  const progressOuter = el("div", "wb-progress");
  const progressInner = el("div", "wb-progress-bar");
  progressOuter.appendChild(progressInner);

  const stats = el("div", "wb-stats");
  const statCells = {};
  for (const [key, label] of [["step", "step"], ["epoch", "epoch"], ["loss", "loss"], ["smoothed", "smoothed"],
    ["eval", "eval loss"], ["lr", "learning rate"], ["tps", "tokens/s"], ["mfu", "MFU"], ["elapsed", "elapsed"],
    ["eta", "ETA"], ["precision", "precision"]]) {
    const cell = el("div", "wb-stat");
    cell.dataset.stat = key;
    const value = el("div", "wb-stat-value", "–");
    cell.append(value, el("div", "wb-stat-label", label));
    stats.appendChild(cell);
    statCells[key] = value;
  }

  const controls = el("div", "wb-controls");
  const mkButton = (label, command, cls) => {
    const b = el("button", `wb-button ${cls || ""}`, label);
    b.type = "button";
    b.dataset.command = command;
    b.addEventListener("click", () => model.send({ command: b.dataset.command }));
    controls.appendChild(b);
    return b;
  };
  const startButton = mkButton("Start", "start", "wb-start");
  const pauseButton = mkButton("Pause", "pause", "wb-pause");
  const stopButton = mkButton("Stop", "stop", "wb-stop");
  const saveButton = mkButton("Save checkpoint", "save", "wb-save");
  const logLabel = el("label", "wb-log-toggle");
  const logBox = document.createElement("input");
  logBox.type = "checkbox";
  logBox.addEventListener("change", () => { model.set("log_scale", logBox.checked); model.save_changes(); });
  logLabel.append(logBox, document.createTextNode(" log scale"));
  controls.appendChild(logLabel);

  const charts = el("div", "wb-charts");
  const lossChart = el("div", "wb-chart-box wb-loss");
  const lrChart = el("div", "wb-chart-box wb-lr");
  const tpsChart = el("div", "wb-chart-box wb-tps");
  charts.append(lossChart, lrChart, tpsChart);
  const legend = el("div", "wb-legend");

  root.append(header, notice, progressOuter, stats, controls, charts, legend);
  host.appendChild(root);

  let drawnWidth = -1; // the layout follows the dashboard's own width, not the window's
  function update() {
    drawnWidth = root.clientWidth;
    root.classList.toggle("wb-narrow", drawnWidth > 0 && drawnWidth < NARROW);
    root.classList.toggle("wb-tiny", drawnWidth > 0 && drawnWidth < TINY);
    const st = model.get("status") || {};
    const runs = model.get("runs") || [];
    const logY = !!model.get("log_scale");
    logBox.checked = logY;
    const status = st.status || "created";
    badge.textContent = status;
    badge.className = `wb-badge wb-status-${status}`;
    root.dataset.status = status;
    root.dataset.step = String(st.step ?? 0);
    message.textContent = st.message || "";
    title.textContent = st.title || "Training";
    notice.textContent = model.get("notice") || "";
    notice.style.display = notice.textContent ? "" : "none";

    const frac = st.max_steps ? Math.min(1, (st.step || 0) / st.max_steps) : 0;
    progressInner.style.width = `${(frac * 100).toFixed(1)}%`;
    statCells.step.textContent = `${st.step ?? 0} / ${st.max_steps ?? "–"}`;
    statCells.epoch.textContent = fmt(st.epoch, 3);
    statCells.loss.textContent = fmt(st.train_loss);
    statCells.smoothed.textContent = fmt(st.smoothed_loss);
    statCells.eval.textContent = fmt(st.eval_loss);
    statCells.lr.textContent = fmt(st.learning_rate, 3);
    statCells.tps.textContent = st.tokens_per_second ? Math.round(st.tokens_per_second).toLocaleString() : "–";
    statCells.mfu.textContent = Number.isFinite(st.mfu) ? `${(st.mfu * 100).toFixed(1)}%` : "–";
    // What the MFU is a share of: a GPU's data-sheet peak, or on a CPU a matmul measured on the spot.
    statCells.mfu.nextSibling.textContent = st.mfu_basis ? `MFU (of ${st.mfu_basis})` : "MFU";
    statCells.elapsed.textContent = fmtDuration(st.elapsed_seconds);
    statCells.eta.textContent = status === "running" ? fmtDuration(st.eta_seconds) : "–";
    statCells.precision.textContent = st.precision ? `${st.precision} · ${st.device || ""}` : "–";

    const active = status === "running" || status === "paused";
    startButton.disabled = !model.get("can_start");
    pauseButton.disabled = !active;
    pauseButton.textContent = status === "paused" ? "Resume" : "Pause";
    pauseButton.dataset.command = status === "paused" ? "resume" : "pause";
    stopButton.disabled = !active;
    saveButton.disabled = !active || !st.can_save;

    const current = runs.length - 1;
    const lossSeries = [], lrSeries = [], tpsSeries = [];
    runs.forEach((run, i) => {
      const mine = i === current;
      const opacity = mine ? 1 : 0.45;
      lossSeries.push({ x: run.steps, y: run.loss, color: run.color, width: 1, opacity: mine ? 0.35 : 0.2,
        label: `${run.name} loss`, counted: mine });
      lossSeries.push({ x: run.steps, y: run.smoothed, color: run.color, width: 2, opacity,
        label: `${run.name} smoothed` });
      (run.parts || []).forEach((part, p) => {
        lossSeries.push({ x: run.steps, y: part.values, color: run.color, width: 1.5, opacity,
          dash: DASHES[p % DASHES.length], label: `${run.name} ${part.name} loss` });
      });
      if (run.eval_steps && run.eval_steps.length) {
        lossSeries.push({ x: run.eval_steps, y: run.eval_loss, color: run.color, dots: true, opacity,
          label: `${run.name} eval loss` });
      }
      lrSeries.push({ x: run.steps, y: run.lr, color: run.color, opacity, label: `${run.name} learning rate` });
      tpsSeries.push({ x: run.steps, y: run.tps, color: run.color, opacity, label: `${run.name} tokens/s` });
    });
    const partNames = runs.length ? (runs[current].parts || []).map((part) => part.name) : [];
    const partsTitle = partNames.length ? `; dashed: ${partNames.join(", ")}` : "";
    drawChart(lossChart, { title: `loss (raw, smoothed, eval ●${partsTitle})`, series: lossSeries, logY,
      height: 220 });
    drawChart(lrChart, { title: "learning rate", series: lrSeries, height: 140 });
    drawChart(tpsChart, { title: "tokens / second", series: tpsSeries, height: 140 });

    legend.replaceChildren();
    runs.forEach((run) => {
      const item = el("span", "wb-legend-item");
      const swatch = el("span", "wb-swatch");
      swatch.style.background = run.color;
      item.append(swatch, document.createTextNode(run.name));
      legend.appendChild(item);
    });
  }

  let frame = null;
  const schedule = () => {
    if (frame === null) frame = requestAnimationFrame(() => { frame = null; update(); });
  };
  for (const name of ["status", "runs", "log_scale", "notice", "can_start"]) model.on(`change:${name}`, schedule);
  // Resized (an HBox share, a side panel): redraw in the next frame, not inside the observer's callback.
  const resized = new ResizeObserver(() => { if (root.clientWidth !== drawnWidth) schedule(); });
  resized.observe(root);
  const hideSnapshot = hideStaticSnapshot(model.get("snapshot_id"));
  update();
  return () => {
    for (const name of ["status", "runs", "log_scale", "notice", "can_start"]) model.off(`change:${name}`, schedule);
    resized.disconnect();
    if (frame !== null) cancelAnimationFrame(frame);
    hideSnapshot();
  };
}

export default { render };
