// Attention explorer: head view, model view, matrix, head-statistics map, rollout. Plain ES module.
// Python sends tokens and statistics as JSON, all heads as low-resolution 8-bit thumbnails, and a
// head in full (8-bit, scaled per row) only when it is opened. Token text is set with textContent only.

function bytesOf(value) {
  // anywidget hands binary traits over as DataView (or ArrayBuffer / typed array in other hosts)
  if (!value) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (value instanceof DataView) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (value.buffer instanceof ArrayBuffer) return new Uint8Array(value.buffer, value.byteOffset || 0, value.byteLength);
  return new Uint8Array(0);
}

// An n x n matrix packed as n float32 row scales followed by n*n uint8 values (value/255 * scale).
function decodeMatrix(raw, n) {
  const bytes = bytesOf(raw);
  if (bytes.length < n * 4 + n * n) return null;
  const scales = new Float32Array(bytes.slice(0, n * 4).buffer);
  const out = new Float32Array(n * n);
  for (let q = 0; q < n; q++) {
    const s = scales[q] / 255;
    for (let k = 0; k < n; k++) out[q * n + k] = bytes[n * 4 + q * n + k] * s;
  }
  return out;
}

function drawHeatmap(canvas, values, rows, cols, size) {
  canvas.width = cols;
  canvas.height = rows;
  canvas.style.width = `${size}px`;
  canvas.style.height = `${Math.round((size * rows) / cols)}px`;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(cols, rows);
  let max = 0;
  for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
  for (let i = 0; i < rows * cols; i++) {
    const t = max > 0 ? values[i] / max : 0;
    img.data[i * 4] = 255 - t * (255 - BLUE[0]);
    img.data[i * 4 + 1] = 255 - t * (255 - BLUE[1]);
    img.data[i * 4 + 2] = 255 - t * (255 - BLUE[2]);
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  canvas.style.imageRendering = "pixelated";
}

function render({ model, el: host }) {
  const root = el("div", "wb-attention");
  const toolbar = el("div", "wb-att-toolbar");
  const note = el("div", "wb-att-note");
  const body = el("div", "wb-att-body");
  root.append(toolbar, note, body);
  host.appendChild(root);

  const modes = [["head", "Head view"], ["model", "Model view"], ["matrix", "Matrix"], ["stats", "Head statistics"],
    ["rollout", "Rollout"]];
  const modeButtons = {};
  for (const [mode, label] of modes) {
    const b = el("button", "wb-att-mode", label);
    b.type = "button";
    b.dataset.mode = mode;
    b.addEventListener("click", () => { model.set("mode", mode); model.save_changes(); });
    toolbar.appendChild(b);
    modeButtons[mode] = b;
  }
  const layerSelect = el("select", "wb-att-layer");
  const headSelect = el("select", "wb-att-head");
  const statSelect = el("select", "wb-att-stat");
  const hideLabel = el("label", "wb-att-hide");
  const hideBox = document.createElement("input");
  hideBox.type = "checkbox";
  hideLabel.append(hideBox, document.createTextNode(" hide special tokens"));
  toolbar.append(el("span", "wb-att-label", "layer"), layerSelect, el("span", "wb-att-label", "head"), headSelect,
    statSelect, hideLabel);

  const select = (layer, head) => {
    model.set("selected", { layer, head });
    model.save_changes();
  };
  layerSelect.addEventListener("change", () => select(Number(layerSelect.value), model.get("selected").head));
  headSelect.addEventListener("change", () => select(model.get("selected").layer, Number(headSelect.value)));
  statSelect.addEventListener("change", () => { model.set("stat", statSelect.value); model.save_changes(); });
  hideBox.addEventListener("change", () => { model.set("hide_special", hideBox.checked); model.save_changes(); });

  let focus = null; // query token index under the pointer in the head view

  function visibleTokens(meta) {
    const hide = model.get("hide_special");
    const idx = [];
    for (let i = 0; i < meta.n; i++) if (!(hide && meta.tokens.special[i])) idx.push(i);
    return idx;
  }

  function tokenLabel(meta, i) {
    const t = meta.tokens.text[i];
    const shown = t === "" ? "·" : t.replace(/\n/g, "⏎");
    return meta.tokens.continuation[i] ? `##${shown.trim()}` : shown;
  }

  function headView(meta) {
    const n = meta.n;
    const sel = model.get("selected");
    const weights = decodeMatrix(model.get("head_data"), n);
    const ready = weights && model.get("head_key") === `${sel.layer}:${sel.head}`;
    const idx = visibleTokens(meta);
    const rowH = 18, width = 560, colW = 170;
    const wrap = el("div", "wb-att-headview");
    wrap.dataset.layer = String(sel.layer);
    wrap.dataset.head = String(sel.head);
    const left = el("div", "wb-att-col wb-att-left");
    const right = el("div", "wb-att-col wb-att-right");
    const canvas = el("canvas", "wb-att-lines");
    const height = idx.length * rowH;
    canvas.width = width - 2 * colW;
    canvas.height = Math.max(1, height);
    left.style.width = right.style.width = `${colW}px`;
    const makeToken = (i, side) => {
      const t = el("div", "wb-att-token", tokenLabel(meta, i));
      t.dataset.index = String(i);
      if (meta.tokens.special[i]) t.classList.add("wb-special");
      if (meta.tokens.segment_ids[i] === 1) t.classList.add("wb-segment-b");
      t.style.height = `${rowH}px`;
      if (side === "left") {
        t.addEventListener("mouseenter", () => { focus = i; drawLines(); mark(); });
        t.addEventListener("mouseleave", () => { focus = null; drawLines(); mark(); });
      }
      return t;
    };
    const leftTokens = idx.map((i) => makeToken(i, "left"));
    const rightTokens = idx.map((i) => makeToken(i, "right"));
    left.append(...leftTokens);
    right.append(...rightTokens);
    const mark = () => {
      leftTokens.forEach((t) => t.classList.toggle("wb-focus", Number(t.dataset.index) === focus));
      if (!ready) return;
      let rowMax = 0;
      if (focus !== null) for (const k of idx) rowMax = Math.max(rowMax, weights[focus * n + k]);
      rightTokens.forEach((t) => {
        const k = Number(t.dataset.index);
        const w = focus === null ? 0 : weights[focus * n + k];
        t.style.background = focus === null ? "" : sequential(rowMax > 0 ? w / rowMax : 0);
        t.title = focus === null ? "" : `${(w * 100).toFixed(1)}% of ${tokenLabel(meta, focus)}'s attention`;
      });
    };
    const drawLines = () => {
      const ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      if (!ready) return;
      let drawn = 0;
      const pos = new Map(idx.map((i, r) => [i, r * rowH + rowH / 2]));
      for (const q of idx) {
        if (focus !== null && q !== focus) continue;
        let rowMax = 0;
        for (const k of idx) rowMax = Math.max(rowMax, weights[q * n + k]);
        for (const k of idx) {
          const w = weights[q * n + k];
          if (w < (focus === null ? 0.02 : 0.005)) continue;
          // Opacity relative to the row's strongest link, so diffuse heads stay readable.
          const alpha = focus === null ? Math.min(1, w) : w / rowMax;
          ctx.strokeStyle = `rgba(9, 105, 218, ${alpha.toFixed(3)})`;
          ctx.lineWidth = focus === null ? 1.2 : 2;
          ctx.beginPath();
          ctx.moveTo(0, pos.get(q));
          ctx.lineTo(canvas.width, pos.get(k));
          ctx.stroke();
          drawn++;
        }
      }
      canvas.dataset.lines = String(drawn);
      canvas.dataset.focus = focus === null ? "" : String(focus);
    };
    wrap.append(left, canvas, right);
    if (!ready) wrap.appendChild(el("div", "wb-att-loading", "loading this head…"));
    drawLines();
    mark();
    return wrap;
  }

  function thumbnails(meta) {
    const grid = el("div", "wb-att-model");
    grid.style.gridTemplateColumns = `auto repeat(${meta.heads}, 1fr)`;
    const bytes = bytesOf(model.get("thumbs"));
    const t = meta.thumb;
    grid.appendChild(el("div", "wb-att-corner", ""));
    for (let h = 0; h < meta.heads; h++) grid.appendChild(el("div", "wb-att-axis", `h${h}`));
    for (let l = 0; l < meta.layers; l++) {
      grid.appendChild(el("div", "wb-att-axis", `L${l}`));
      for (let h = 0; h < meta.heads; h++) {
        const c = el("canvas", "wb-att-thumb");
        const offset = (l * meta.heads + h) * t * t;
        const values = new Float32Array(t * t);
        for (let i = 0; i < t * t; i++) values[i] = bytes[offset + i] || 0;
        drawHeatmap(c, values, t, t, 44);
        c.title = `layer ${l}, head ${h}`;
        c.dataset.layer = String(l);
        c.dataset.head = String(h);
        c.addEventListener("click", () => { select(l, h); model.set("mode", "head"); model.save_changes(); });
        grid.appendChild(c);
      }
    }
    return grid;
  }

  function matrix(meta, values, caption) {
    const wrap = el("div", "wb-att-matrix");
    const n = meta.n;
    if (!values) { wrap.appendChild(el("div", "wb-att-loading", "loading…")); return wrap; }
    const idx = visibleTokens(meta);
    const sub = new Float32Array(idx.length * idx.length);
    idx.forEach((q, r) => idx.forEach((k, c) => { sub[r * idx.length + c] = values[q * n + k]; }));
    const canvas = el("canvas", "wb-att-heat");
    drawHeatmap(canvas, sub, idx.length, idx.length, Math.min(560, Math.max(200, idx.length * 14)));
    canvas.addEventListener("mousemove", (ev) => {
      const rect = canvas.getBoundingClientRect();
      const c = Math.floor(((ev.clientX - rect.left) / rect.width) * idx.length);
      const r = Math.floor(((ev.clientY - rect.top) / rect.height) * idx.length);
      if (r >= 0 && c >= 0 && r < idx.length && c < idx.length) {
        canvas.title = `${tokenLabel(meta, idx[r])} → ${tokenLabel(meta, idx[c])}: ${sub[r * idx.length + c].toFixed(3)}`;
      }
    });
    wrap.append(el("div", "wb-att-caption", caption), canvas);
    return wrap;
  }

  function statsMap(meta) {
    const name = model.get("stat");
    const values = meta.stats[name] || [];
    const flat = values.flat();
    const max = Math.max(...flat, 1e-9);
    const grid = el("div", "wb-att-stats");
    grid.style.gridTemplateColumns = `auto repeat(${meta.heads}, 1fr)`;
    grid.appendChild(el("div", "wb-att-corner", name));
    for (let h = 0; h < meta.heads; h++) grid.appendChild(el("div", "wb-att-axis", `h${h}`));
    values.forEach((row, l) => {
      grid.appendChild(el("div", "wb-att-axis", `L${l}`));
      row.forEach((v, h) => {
        const cell = el("div", "wb-att-cell", v.toFixed(2));
        cell.style.background = sequential(v / max);
        cell.style.color = v / max > 0.6 ? "white" : "";
        cell.title = `layer ${l}, head ${h}: ${name} = ${v.toFixed(4)}`;
        cell.addEventListener("click", () => { select(l, h); model.set("mode", "head"); model.save_changes(); });
        grid.appendChild(cell);
      });
    });
    return grid;
  }

  function update() {
    const meta = model.get("meta") || {};
    if (!meta.n) return;
    const mode = model.get("mode");
    const sel = model.get("selected") || { layer: 0, head: 0 };
    root.dataset.mode = mode;
    for (const [m, b] of Object.entries(modeButtons)) b.classList.toggle("wb-active", m === mode);
    if (layerSelect.options.length !== meta.layers) {
      layerSelect.replaceChildren(...Array.from({ length: meta.layers }, (_, i) => new Option(String(i), String(i))));
      headSelect.replaceChildren(...Array.from({ length: meta.heads }, (_, i) => new Option(String(i), String(i))));
      statSelect.replaceChildren(...meta.stat_names.map((s) => new Option(s, s)));
    }
    layerSelect.value = String(sel.layer);
    headSelect.value = String(sel.head);
    statSelect.value = model.get("stat");
    statSelect.style.display = mode === "stats" ? "" : "none";
    hideBox.checked = !!model.get("hide_special");
    note.textContent = meta.note || "";
    note.style.display = meta.note ? "" : "none";
    let view;
    if (mode === "model") view = thumbnails(meta);
    else if (mode === "stats") view = statsMap(meta);
    else if (mode === "matrix") {
      const ready = model.get("head_key") === `${sel.layer}:${sel.head}`;
      view = matrix(meta, ready ? decodeMatrix(model.get("head_data"), meta.n) : null,
        `layer ${sel.layer}, head ${sel.head}: rows attend to columns`);
    } else if (mode === "rollout") {
      const wrap = el("div", "wb-att-rollouts");
      wrap.appendChild(matrix(meta, decodeMatrix(model.get("rollout_data"), meta.n),
        "attention rollout through all layers (Abnar & Zuidema 2020)"));
      if (meta.has_flow) wrap.appendChild(matrix(meta, decodeMatrix(model.get("flow_data"), meta.n), "attention flow"));
      view = wrap;
    } else view = headView(meta);
    body.replaceChildren(view);
  }

  let frame = null;
  const schedule = () => { if (frame === null) frame = requestAnimationFrame(() => { frame = null; update(); }); };
  const traits = ["meta", "mode", "selected", "head_data", "head_key", "stat", "hide_special", "thumbs", "rollout_data",
    "flow_data"];
  for (const t of traits) model.on(`change:${t}`, schedule);
  update();
  return () => { for (const t of traits) model.off(`change:${t}`, schedule); };
}

export default { render };
