// Layer curves: one value per layer row (x) as lines, for the lens-quality and probe results. Each
// section (one per result) has its title, a caption computed in Python, side-by-side panels and a
// status line; hover a row (its band or a point) for every line's value there, across the section's
// panels. Log-scale panels leave a zero or negative value out of the line (the output row's KL is 0).
// With several checkpoints, one accuracy line each (oldest lightest); a click on a legend key chooses
// the checkpoint whose control accuracy is drawn. Plain ES module; every label is set with textContent.

const PANEL_H = 250; // px
const WIDE = 860; // px of a section's panels together
const PAD = { l: 52, r: 14, t: 22, b: 38 };
const ROLE_COLOURS = {
  logit: "rgb(84,39,136)", // PuOr purple
  tuned: "rgb(179,88,6)", // PuOr orange
  control: "rgb(179,88,6)",
  baseline: "rgb(110,118,129)",
};
const ROLE_DASH = { control: "2 3" };

function fmtValue(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v === 0) return "0";
  if (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6) return v.toExponential(2);
  return Math.abs(v) >= 1000 ? String(Math.round(v)) : v.toPrecision(3); // 7900, not 7.90e+3
}

// A power of ten as a tick label: 0.01, 0.1, 1, 10, 100, 1000, then 1e4, 1e5.
function decade(v) {
  const k = Math.round(Math.log10(v));
  return k >= -3 && k <= 3 ? String(Number(v.toPrecision(1))) : `1e${k}`;
}

// "layer 12" -> "12", "embeddings" -> "emb": the axis is narrow; the hover gives the full name.
function shortRow(name) {
  const m = /^layer (\d+)$/.exec(name);
  if (m) return m[1];
  return name === "embeddings" ? "emb" : name;
}

function seriesColour(s) {
  if (s.role === "accuracy") return sequential(s.shade);
  return ROLE_COLOURS[s.role] || "rgb(31,35,40)";
}

// The checkpoint index chosen by the trait (negative counts from the end), within this section's.
function chosenCheckpoint(section, wanted) {
  const n = section.checkpoints.length;
  if (!n) return null;
  return ((wanted % n) + n) % n;
}

// Lines of a panel to show: every accuracy line; control and hover-only lines of the chosen checkpoint.
function shownSeries(panel, chosen) {
  return panel.series
    .map((s, index) => ({ ...s, index }))
    .filter((s) => s.role === "accuracy" || s.checkpoint === null || s.checkpoint === chosen);
}

// The y scale of a panel: [lo, hi] in plotted units (log10 on a log panel) and the tick values.
function yScale(panel, series, logY) {
  if (panel.range && !logY) {
    const [lo, hi] = panel.range;
    return { lo, hi, ticks: [0, 0.25, 0.5, 0.75, 1].map((t) => lo + t * (hi - lo)), log: false };
  }
  const values = [];
  for (const s of series) for (const v of s.values) if (v !== null && (!logY || v > 0)) values.push(v);
  for (const b of panel.baselines || []) if (!logY || b.value > 0) values.push(b.value);
  if (!values.length) return { lo: 0, hi: 1, ticks: [0, 1], log: false };
  if (logY) {
    const lo = Math.floor(Math.log10(Math.min(...values)));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values))));
    const ticks = [];
    for (let t = lo; t <= hi; t++) ticks.push(Math.pow(10, t));
    return { lo, hi, ticks, log: true };
  }
  const lo = Math.min(0, ...values);
  const top = Math.max(...values);
  const hi = top > lo ? top + 0.05 * (top - lo) : lo + 1;
  return { lo, hi, ticks: [0, 0.25, 0.5, 0.75, 1].map((t) => lo + t * (hi - lo)), log: false };
}

function drawPanel(section, panel, chosen, logWanted, width) {
  const rows = section.rows;
  const n = rows.length;
  const logY = logWanted && panel.log;
  const series = shownSeries(panel, chosen);
  const drawn = series.filter((s) => s.drawn);
  const scale = yScale(panel, drawn, logY);
  const plotW = width - PAD.l - PAD.r;
  const plotH = PANEL_H - PAD.t - PAD.b;
  const step = plotW / Math.max(1, n);
  const px = (i) => PAD.l + (i + 0.5) * step;
  const py = (v) => {
    const t = scale.log ? Math.log10(v) : v;
    return PAD.t + plotH - ((t - scale.lo) / (scale.hi - scale.lo)) * plotH;
  };
  const plotted = (v) => v !== null && Number.isFinite(v) && (!scale.log || v > 0);

  const svg = svgEl("svg", { width, height: PANEL_H, viewBox: `0 0 ${width} ${PANEL_H}`, class: "wb-curves-panel", role: "img" });
  svg.dataset.panel = panel.key;
  svg.dataset.scale = scale.log ? "log" : "linear";
  const heading = svgEl("text", { x: PAD.l, y: 14, class: "wb-curves-heading" });
  heading.textContent = panel.title + (panel.unit ? ` (${panel.unit})` : "") + (scale.log ? " · log scale" : "");
  svg.appendChild(heading);

  const bands = svgEl("g", { class: "wb-curves-bands" });
  for (let i = 0; i < n; i++) {
    const band = svgEl("rect", { x: PAD.l + i * step, y: PAD.t, width: step, height: plotH, class: "wb-curves-band" });
    band.dataset.row = String(i);
    bands.appendChild(band);
  }
  svg.appendChild(bands);

  const axes = svgEl("g", { class: "wb-curves-axes" });
  for (const tick of scale.ticks) {
    const y = py(tick);
    axes.appendChild(svgEl("line", { x1: PAD.l, x2: width - PAD.r, y1: y, y2: y, class: "wb-curves-grid" }));
    const label = svgEl("text", { x: PAD.l - 5, y: y + 3, "text-anchor": "end" });
    label.textContent = scale.log ? decade(tick) : fmtValue(tick);
    axes.appendChild(label);
  }
  const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotW / 26)))); // a label every ~26 px at most
  for (let i = 0; i < n; i += every) {
    const label = svgEl("text", { x: px(i), y: PAD.t + plotH + 14, "text-anchor": "middle" });
    label.textContent = shortRow(rows[i]);
    axes.appendChild(label);
  }
  const axisName = svgEl("text", { x: PAD.l + plotW / 2, y: PANEL_H - 6, "text-anchor": "middle", class: "wb-curves-axisname" });
  axisName.textContent = "layer row";
  axes.appendChild(axisName);
  svg.appendChild(axes);

  for (const b of panel.baselines || []) {
    if (!plotted(b.value)) continue;
    const y = py(b.value);
    const line = svgEl("line", { x1: PAD.l, x2: width - PAD.r, y1: y, y2: y, class: "wb-curves-baseline",
      stroke: ROLE_COLOURS.baseline, "stroke-dasharray": "6 4" });
    line.appendChild(Object.assign(svgEl("title"), { textContent: `${b.label}: ${fmtValue(b.value)}` }));
    svg.appendChild(line);
    const label = svgEl("text", { x: width - PAD.r - 2, y: y - 4, "text-anchor": "end", class: "wb-curves-baseline-label" });
    label.textContent = `${b.label} ${fmtValue(b.value)}`;
    svg.appendChild(label);
  }

  for (const s of drawn) {
    const colour = seriesColour(s);
    let d = "";
    let pen = false; // a gap where a value is missing (or not positive on a log scale)
    s.values.forEach((v, i) => {
      if (!plotted(v)) { pen = false; return; }
      d += `${pen ? "L" : "M"}${px(i).toFixed(1)},${py(v).toFixed(1)} `;
      pen = true;
    });
    const path = svgEl("path", { d: d.trim(), fill: "none", stroke: colour, "stroke-width": s.role === "accuracy" ? 2 : 1.8,
      class: "wb-curves-line" });
    if (ROLE_DASH[s.role]) path.setAttribute("stroke-dasharray", ROLE_DASH[s.role]);
    path.dataset.role = s.role;
    path.dataset.series = String(s.index);
    path.appendChild(Object.assign(svgEl("title"), { textContent: s.label }));
    svg.appendChild(path);
    s.values.forEach((v, i) => {
      if (!plotted(v)) return;
      const dot = svgEl("circle", { cx: px(i), cy: py(v), r: 3, fill: colour, class: "wb-curves-point" });
      dot.dataset.row = String(i);
      dot.dataset.series = String(s.index);
      dot.dataset.value = String(v);
      dot.appendChild(Object.assign(svgEl("title"), { textContent: `${rows[i]} · ${s.label} ${fmtValue(v)}` }));
      svg.appendChild(dot);
    });
  }
  return svg;
}

// The legend of a panel: a key per shown line (and baseline); accuracy keys choose the checkpoint.
function legend(section, panel, chosen, choose) {
  const box = el("div", "wb-curves-legend");
  const several = section.checkpoints.length > 1;
  for (const s of shownSeries(panel, chosen)) {
    if (!s.drawn) continue;
    const key = el("span", "wb-curves-key");
    key.dataset.role = s.role;
    const swatch = svgEl("svg", { width: 22, height: 10 });
    const line = svgEl("line", { x1: 1, x2: 21, y1: 5, y2: 5, stroke: seriesColour(s), "stroke-width": 2.5 });
    if (ROLE_DASH[s.role]) line.setAttribute("stroke-dasharray", ROLE_DASH[s.role]);
    swatch.appendChild(line);
    key.append(swatch, el("span", "", s.label));
    if (several && s.role === "accuracy") {
      key.classList.add("wb-curves-choosable");
      key.title = "draw this checkpoint's control accuracy";
      if (s.checkpoint === chosen) key.classList.add("wb-curves-selected");
      key.addEventListener("click", () => choose(s.checkpoint));
    }
    box.appendChild(key);
  }
  for (const b of panel.baselines || []) {
    const key = el("span", "wb-curves-key");
    key.dataset.role = "baseline";
    const swatch = svgEl("svg", { width: 22, height: 10 });
    swatch.appendChild(svgEl("line", { x1: 1, x2: 21, y1: 5, y2: 5, stroke: ROLE_COLOURS.baseline, "stroke-width": 2,
      "stroke-dasharray": "4 3" }));
    key.append(swatch, el("span", "", b.label));
    box.appendChild(key);
  }
  return box;
}

// One row of a section, every panel's shown lines: "layer 3 · KL: logit lens 2.31, tuned lens 0.850 · ...".
function describeRow(section, chosen, r) {
  const parts = [section.rows[r]];
  for (const panel of section.panels) {
    const values = shownSeries(panel, chosen).map((s) => `${s.label} ${fmtValue(s.values[r])}`);
    parts.push(`${panel.title}: ${values.join(", ")}`);
  }
  return parts.join(" · ");
}

function render({ model, el: host }) {
  const root = el("div", "wb-curves");
  host.appendChild(root);

  function choose(index) {
    model.set("checkpoint", index);
    model.save_changes();
  }

  function drawSection(section, logWanted) {
    const box = el("div", "wb-curves-section");
    const chosen = chosenCheckpoint(section, model.get("checkpoint") ?? -1);
    const status = el("div", "wb-curves-status", "hover a layer row for its values");
    const width = section.panels.length > 1 ? Math.floor(WIDE / section.panels.length) - 8 : WIDE;
    const panels = el("div", "wb-curves-panels");
    for (const panel of section.panels) {
      const figure = el("div", "wb-curves-figure");
      figure.append(drawPanel(section, panel, chosen, logWanted, width), legend(section, panel, chosen, choose));
      panels.appendChild(figure);
    }
    panels.addEventListener("mouseover", (event) => {
      const target = event.target.closest("[data-row]");
      if (!target) return;
      const r = Number(target.dataset.row);
      status.textContent = describeRow(section, chosen, r);
      status.dataset.row = String(r);
      for (const band of panels.querySelectorAll(".wb-curves-band")) {
        band.classList.toggle("wb-curves-hot", band.dataset.row === String(r));
      }
    });
    box.append(
      el("div", "wb-curves-title", section.title),
      el("div", "wb-curves-caption", section.caption),
      el("div", "wb-curves-info", section.info),
      panels,
      status,
    );
    return box;
  }

  function draw() {
    const meta = model.get("meta") || {};
    const sections = meta.sections || [];
    const logWanted = !!model.get("log_scale");
    const toolbar = el("div", "wb-curves-toolbar");
    if (sections.length > 1) toolbar.appendChild(el("span", "wb-curves-maintitle", meta.title));
    if (sections.some((s) => s.panels.some((p) => p.log))) {
      const label = el("label", "wb-curves-log");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = logWanted;
      box.addEventListener("change", () => { model.set("log_scale", box.checked); model.save_changes(); });
      label.append(box, document.createTextNode(" log scale"));
      toolbar.appendChild(label);
    }
    root.dataset.kind = meta.kind || "";
    root.replaceChildren(toolbar, ...sections.map((s) => drawSection(s, logWanted)));
  }

  draw();
  const traits = ["meta", "log_scale", "checkpoint"];
  for (const t of traits) model.on(`change:${t}`, draw);
  return () => { for (const t of traits) model.off(`change:${t}`, draw); };
}

export default { render };
