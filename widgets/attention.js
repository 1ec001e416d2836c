// Attention explorer: head view, model view, matrix, head-statistics map, rollout. Plain ES module.
// Python sends tokens and statistics as JSON, all heads as low-resolution 8-bit thumbnails, and a
// head in full (8-bit, scaled per row) only when it is opened. For a long text (meta.long) it sends
// only what is asked for: the rows in sight (`window`), the opened head pooled, and a zoomed region
// (`zoom`). The long head view is virtualised: only the rows in sight exist in the DOM.
// Token text is set with textContent only.

const ROW_H = 18; // px per token row in the head view (fixed: the virtual list depends on it)
const COL_W = 170; // px of each token column
const LINES_W = 220; // px of the canvas between the columns
const VIEW_H = 600; // px of the long head view's viewport
const MINIMAP_W = 44; // px of the strip that shows a query's row over the whole text
const OVERSCAN = 6; // rows drawn above and below the viewport
const REQUEST_DELAY_MS = 80; // a window is asked for once scrolling pauses this long
const MATRIX_PX = 512; // px a side of the pooled image

// A rows x cols matrix packed as rows float32 row scales followed by rows*cols uint8 (value/255 * scale).
function decodeMatrix(raw, rows, cols = rows) {
  const bytes = bytesOf(raw);
  if (bytes.length < rows * 4 + rows * cols) return null;
  const scales = new Float32Array(bytes.slice(0, rows * 4).buffer);
  const out = new Float32Array(rows * cols);
  for (let q = 0; q < rows; q++) {
    const s = scales[q] / 255;
    for (let k = 0; k < cols; k++) out[q * cols + k] = bytes[rows * 4 + q * cols + k] * s;
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

const sameHead = (a, sel) => !!a && a.layer === sel.layer && a.head === sel.head;

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
  const search = el("input", "wb-att-search");
  search.type = "search";
  search.placeholder = "find a token (Enter)";
  search.setAttribute("aria-label", "find a token");
  const searchStatus = el("span", "wb-att-search-status", "");
  toolbar.append(el("span", "wb-att-label", "layer"), layerSelect, el("span", "wb-att-label", "head"), headSelect,
    statSelect, hideLabel, search, searchStatus);

  const select = (layer, head) => {
    model.set("selected", { layer, head });
    model.save_changes();
  };
  layerSelect.addEventListener("change", () => select(Number(layerSelect.value), model.get("selected").head));
  headSelect.addEventListener("change", () => select(model.get("selected").layer, Number(headSelect.value)));
  statSelect.addEventListener("change", () => { model.set("stat", statSelect.value); model.save_changes(); });
  hideBox.addEventListener("change", () => { model.set("hide_special", hideBox.checked); model.save_changes(); });

  let focus = null; // query token index under the pointer in the head view
  let topToken = 0; // the first token in sight in the head view, kept when the head or the mode changes
  let found = null; // the token the search box found last
  let current = null; // the view on show: { key, node, refresh?, reveal?, mounted?, destroy? }

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

  function makeToken(meta, i, side) {
    const t = el("div", "wb-att-token", tokenLabel(meta, i));
    t.dataset.index = String(i);
    if (meta.tokens.special[i]) t.classList.add("wb-special");
    if (meta.tokens.segment_ids[i] === 1) t.classList.add("wb-segment-b");
    if (i === found) t.classList.add("wb-match");
    if (side === "left" && i === focus) t.classList.add("wb-focus");
    t.style.height = `${ROW_H}px`;
    return t;
  }

  // Where the heads a standalone page does not hold in full would need the kernel, say so.
  function offlineMessage(meta, sel) {
    if (!Array.isArray(meta.embedded) || meta.embedded.includes(`${sel.layer}:${sel.head}`)) return null;
    return el("div", "wb-att-offline",
      `This page holds layer ${sel.layer}, head ${sel.head} only pooled: its rows and zoomed regions need the ` +
      `kernel, or an export with to_html(heads=[(${sel.layer}, ${sel.head})]).`);
  }

  // The short head view: every token in the DOM, the whole head in memory (as it was before long texts).
  function headView(meta) {
    const n = meta.n;
    const sel = model.get("selected");
    const weights = decodeMatrix(model.get("head_data"), n);
    const ready = weights && model.get("head_key") === `${sel.layer}:${sel.head}`;
    const idx = visibleTokens(meta);
    const wrap = el("div", "wb-att-headview");
    wrap.dataset.layer = String(sel.layer);
    wrap.dataset.head = String(sel.head);
    const left = el("div", "wb-att-col wb-att-left");
    const right = el("div", "wb-att-col wb-att-right");
    const canvas = el("canvas", "wb-att-lines");
    const height = idx.length * ROW_H;
    canvas.width = LINES_W;
    canvas.height = Math.max(1, height);
    left.style.width = right.style.width = `${COL_W}px`;
    const leftTokens = idx.map((i) => makeToken(meta, i, "left"));
    const rightTokens = idx.map((i) => makeToken(meta, i, "right"));
    for (const t of leftTokens) {
      const i = Number(t.dataset.index);
      t.addEventListener("mouseenter", () => { focus = i; drawLines(); mark(); });
      t.addEventListener("mouseleave", () => { focus = null; drawLines(); mark(); });
    }
    left.append(...leftTokens);
    right.append(...rightTokens);
    const mark = () => {
      leftTokens.forEach((t) => t.classList.toggle("wb-focus", Number(t.dataset.index) === focus));
      for (const t of [...leftTokens, ...rightTokens]) t.classList.toggle("wb-match", Number(t.dataset.index) === found);
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
      const pos = new Map(idx.map((i, r) => [i, r * ROW_H + ROW_H / 2]));
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
    const offline = offlineMessage(meta, sel);
    if (offline) wrap.appendChild(offline);
    else if (!ready) wrap.appendChild(el("div", "wb-att-loading", "loading this head…"));
    drawLines();
    mark();
    const reveal = (i) => {
      const r = idx.indexOf(i);
      if (r >= 0) wrap.scrollTop = r * ROW_H - wrap.clientHeight / 2;
      mark();
    };
    return { key: null, node: wrap, reveal };
  }

  // The long head view: a virtual list of fixed-height rows. Only the rows in sight are in the DOM, lines
  // join the queries in sight to the keys in sight, and the kernel sends the rows in sight (a window)
  // as the user scrolls. The minimap beside the keys shows the hovered query's row over the whole text.
  function virtualHeadView(meta, key) {
    const n = meta.n;
    const sel = model.get("selected");
    const idx = visibleTokens(meta);
    const rowOf = new Int32Array(n).fill(-1); // token -> row in the list
    idx.forEach((i, r) => { rowOf[i] = r; });
    const wrap = el("div", "wb-att-virtual");
    wrap.dataset.layer = String(sel.layer);
    wrap.dataset.head = String(sel.head);
    const scroller = el("div", "wb-att-headview wb-att-scroller");
    scroller.style.height = `${VIEW_H}px`;
    const spacer = el("div", "wb-att-spacer");
    spacer.style.height = `${idx.length * ROW_H}px`;
    spacer.style.width = `${2 * COL_W + LINES_W}px`;
    const left = el("div", "wb-att-col wb-att-left");
    const right = el("div", "wb-att-col wb-att-right");
    left.style.width = right.style.width = `${COL_W}px`;
    right.style.left = `${COL_W + LINES_W}px`;
    const canvas = el("canvas", "wb-att-lines");
    canvas.width = LINES_W;
    canvas.height = VIEW_H;
    canvas.style.left = `${COL_W}px`;
    spacer.append(left, canvas, right);
    scroller.appendChild(spacer);
    const minimap = el("canvas", "wb-att-minimap");
    minimap.width = MINIMAP_W;
    minimap.height = VIEW_H;
    minimap.title = "Where the hovered token attends over the whole text (the box is what is in sight); click to go there";
    const status = el("div", "wb-att-window-status", "");
    const frame = el("div", "wb-att-frame");
    frame.append(scroller, minimap);
    wrap.append(frame, status);
    const offline = offlineMessage(meta, sel);
    if (offline) wrap.appendChild(offline);

    let win = null; // { start, stop, scales, bytes }: the rows the kernel sent for this head
    let pending = null; // the window asked for and not answered yet
    let timer = null;
    let frameId = null;
    let range = [0, 0]; // rows (list positions) in the DOM

    const readWindow = () => {
      const shown = model.get("window_shown");
      if (!sameHead(shown, sel)) return;
      const rows = shown.stop - shown.start;
      const bytes = bytesOf(model.get("window_data"));
      if (bytes.length < rows * 4 + rows * n) return;
      win = { start: shown.start, stop: shown.stop, scales: new Float32Array(bytes.slice(0, rows * 4).buffer),
        bytes: bytes.subarray(rows * 4) };
      scroller.dataset.window = `${win.start}:${win.stop}`;
      if (pending && pending.start >= win.start && pending.stop <= win.stop) pending = null;
    };
    const has = (q) => win !== null && q >= win.start && q < win.stop;
    const weight = (q, k) => win.bytes[(q - win.start) * n + k] * (win.scales[q - win.start] / 255);

    // Tokens (not rows) in sight, first to last inclusive: what a window must cover.
    const inSight = () => {
      const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_H));
      const last = Math.min(idx.length - 1, Math.floor((scroller.scrollTop + VIEW_H - 1) / ROW_H));
      return [first, Math.max(first, last)];
    };

    const request = () => {
      timer = null;
      if (!idx.length) return;
      const [first, last] = inSight();
      const need = [idx[first], idx[last] + 1];
      const covers = (w) => w && w.start <= need[0] && w.stop >= need[1];
      if (covers(win) || covers(pending)) return;
      const want = Math.min(meta.max_window_rows, Math.max(meta.window_rows, need[1] - need[0]));
      const start = Math.max(0, Math.min(n - want, need[0] - Math.floor((want - (need[1] - need[0])) / 2)));
      pending = { layer: sel.layer, head: sel.head, start, stop: Math.min(n, start + want) };
      model.set("window", pending);
      model.save_changes();
    };

    const paintMinimap = (rows) => {
      const ctx = minimap.getContext("2d");
      ctx.clearRect(0, 0, MINIMAP_W, VIEW_H);
      ctx.fillStyle = "rgba(127, 127, 127, 0.08)";
      ctx.fillRect(0, 0, MINIMAP_W, VIEW_H);
      const perPx = Math.max(idx.length, 1) / VIEW_H; // rows per pixel
      minimap.dataset.focus = "";
      minimap.dataset.peak = "";
      if (focus !== null && has(focus)) {
        // Each pixel shows its strongest key, so a single sharp link far away stays visible.
        const bucket = new Float32Array(VIEW_H);
        let rowMax = 0, peak = -1;
        for (let r = 0; r < idx.length; r++) {
          const w = weight(focus, idx[r]);
          const y = Math.min(VIEW_H - 1, Math.floor(r / perPx));
          if (w > bucket[y]) bucket[y] = w;
          if (w > rowMax) { rowMax = w; peak = idx[r]; }
        }
        for (let y = 0; y < VIEW_H; y++) {
          if (!(bucket[y] > 0) || rowMax <= 0) continue;
          const t = bucket[y] / rowMax;
          ctx.fillStyle = sequential(0.25 + 0.75 * t);
          ctx.fillRect(0, y, Math.max(1, Math.round(t * (MINIMAP_W - 4))), 1);
        }
        minimap.dataset.focus = String(focus);
        minimap.dataset.peak = String(peak);
      }
      if (found !== null && rowOf[found] >= 0) {
        ctx.fillStyle = "#bf8700";
        ctx.fillRect(MINIMAP_W - 6, Math.floor(rowOf[found] / perPx) - 1, 6, 3);
      }
      ctx.strokeStyle = "rgba(9, 105, 218, 0.9)";
      ctx.lineWidth = 1;
      const y0 = rows[0] / perPx, y1 = (rows[1] + 1) / perPx;
      ctx.strokeRect(0.5, y0 + 0.5, MINIMAP_W - 1, Math.max(3, y1 - y0) - 1);
    };

    const paint = () => {
      frameId = null;
      const rows = inSight();
      const from = Math.max(0, rows[0] - OVERSCAN), to = Math.min(idx.length, rows[1] + 1 + OVERSCAN);
      if (from !== range[0] || to !== range[1] || left.childElementCount !== to - from) {
        range = [from, to];
        const slice = idx.slice(from, to);
        left.style.top = right.style.top = `${from * ROW_H}px`;
        left.replaceChildren(...slice.map((i) => makeToken(meta, i, "left")));
        right.replaceChildren(...slice.map((i) => makeToken(meta, i, "right")));
      }
      topToken = idx.length ? idx[rows[0]] : 0;
      // The canvas covers the viewport only; it moves with the scroll and draws what is in sight.
      const top = scroller.scrollTop;
      canvas.style.top = `${top}px`;
      const ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, LINES_W, VIEW_H);
      const y = (r) => r * ROW_H + ROW_H / 2 - top;
      let drawn = 0, missing = 0;
      for (let r = rows[0]; r <= rows[1] && r < idx.length; r++) {
        const q = idx[r];
        if (focus !== null && q !== focus) continue;
        if (!has(q)) { missing++; continue; }
        let rowMax = 0;
        for (let c = rows[0]; c <= rows[1]; c++) rowMax = Math.max(rowMax, weight(q, idx[c]));
        // Unfocused, the links of at least 2% show; the hovered query's links are drawn against its strongest
        // key in sight (at thousands of tokens a query's attention is spread thin), as the key colours are.
        const least = focus === null ? 0.02 : Math.max(1e-9, 0.05 * rowMax);
        for (let c = rows[0]; c <= rows[1] && c < idx.length; c++) {
          const w = weight(q, idx[c]);
          if (w < least) continue;
          const alpha = focus === null ? Math.min(1, w) : w / rowMax;
          ctx.strokeStyle = `rgba(9, 105, 218, ${alpha.toFixed(3)})`;
          ctx.lineWidth = focus === null ? 1.2 : 2;
          ctx.beginPath();
          ctx.moveTo(0, y(r));
          ctx.lineTo(LINES_W, y(c));
          ctx.stroke();
          drawn++;
        }
      }
      canvas.dataset.lines = String(drawn);
      canvas.dataset.focus = focus === null ? "" : String(focus);
      // The keys in sight take the focused query's colour; its links out of sight are on the minimap.
      const focused = focus !== null && has(focus);
      let rowMax = 0;
      if (focused) for (let c = rows[0]; c <= rows[1]; c++) rowMax = Math.max(rowMax, weight(focus, idx[c]));
      for (const t of right.children) {
        const k = Number(t.dataset.index);
        const w = focused ? weight(focus, k) : 0;
        t.style.background = focused ? sequential(rowMax > 0 ? w / rowMax : 0) : "";
        t.title = focused ? `${(w * 100).toFixed(2)}% of ${tokenLabel(meta, focus)}'s attention` : "";
      }
      for (const t of left.children) t.classList.toggle("wb-focus", Number(t.dataset.index) === focus);
      paintMinimap(rows);
      status.textContent = `tokens ${idx.length ? idx[rows[0]] : 0}–${idx.length ? idx[rows[1]] : 0} of ${n}` +
        (missing ? " · loading rows…" : "") + " · hover a token to see its attention over the whole text (right strip)";
    };
    const schedulePaint = () => { if (frameId === null) frameId = requestAnimationFrame(paint); };
    const onScroll = () => {
      schedulePaint();
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(request, REQUEST_DELAY_MS);
    };
    scroller.addEventListener("scroll", onScroll, { passive: true });
    left.addEventListener("mouseover", (ev) => {
      const t = ev.target.closest(".wb-att-token");
      if (t && Number(t.dataset.index) !== focus) { focus = Number(t.dataset.index); schedulePaint(); }
    });
    left.addEventListener("mouseleave", () => { focus = null; schedulePaint(); });
    minimap.addEventListener("click", (ev) => {
      const rect = minimap.getBoundingClientRect();
      const r = Math.floor(((ev.clientY - rect.top) / rect.height) * idx.length);
      scroller.scrollTop = r * ROW_H - VIEW_H / 2;
    });

    readWindow();
    return {
      key,
      node: wrap,
      refresh() { readWindow(); schedulePaint(); request(); },
      reveal(i) {
        range = [0, 0]; // redraw the rows: the found token's mark changed
        if (!(rowOf[i] >= 0)) { schedulePaint(); return; }
        scroller.scrollTop = rowOf[i] * ROW_H - VIEW_H / 2 + ROW_H / 2;
        schedulePaint();
      },
      mounted() {
        const r = rowOf[topToken] >= 0 ? rowOf[topToken] : 0;
        scroller.scrollTop = r * ROW_H;
        paint();
        request();
      },
      destroy() {
        scroller.removeEventListener("scroll", onScroll);
        if (timer !== null) clearTimeout(timer);
        if (frameId !== null) cancelAnimationFrame(frameId);
      },
    };
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

  // A map between blocks of `block` tokens (the pooled head, the block rollout), hover says which tokens.
  function blockMatrix(meta, values, size, block, caption) {
    const wrap = el("div", "wb-att-matrix");
    if (!values) { wrap.appendChild(el("div", "wb-att-loading", "loading…")); return { wrap, canvas: null }; }
    const canvas = el("canvas", "wb-att-heat wb-att-pooled");
    drawHeatmap(canvas, values, size, size, MATRIX_PX);
    const span = (b) => `${b * block}–${Math.min(meta.n, (b + 1) * block) - 1}`;
    canvas.addEventListener("mousemove", (ev) => {
      const rect = canvas.getBoundingClientRect();
      const c = Math.floor(((ev.clientX - rect.left) / rect.width) * size);
      const r = Math.floor(((ev.clientY - rect.top) / rect.height) * size);
      if (r >= 0 && c >= 0 && r < size && c < size) {
        canvas.title = `tokens ${span(r)} → tokens ${span(c)}: ${values[r * size + c].toFixed(4)}`;
      }
    });
    const stage = el("div", "wb-att-stage");
    stage.appendChild(canvas);
    wrap.append(el("div", "wb-att-caption", caption), stage);
    return { wrap, canvas, stage };
  }

  // The long matrix view: the opened head pooled over blocks; drag (or click) to zoom into a region,
  // which the kernel sends at full resolution and which is drawn in place with its token labels.
  function zoomableMatrix(meta, key) {
    const node = el("div", "wb-att-zoomable");
    const n = meta.n, bs = meta.block_size, blocks = meta.blocks, cells = meta.zoom_cells;
    const sel = model.get("selected");
    const ask = (q0, q1, k0, k1) => {
      // Regions larger than the cap keep their middle: the kernel answers at most cells x cells.
      const fit = (a, b) => {
        if (b - a <= cells) return [a, b];
        const lo = Math.floor((a + b - cells) / 2);
        return [lo, lo + cells];
      };
      const [a0, a1] = fit(q0, q1), [b0, b1] = fit(k0, k1);
      model.set("zoom", { layer: sel.layer, head: sel.head, q0: a0, q1: a1, k0: b0, k1: b1 });
      model.save_changes();
    };
    const around = (t) => {
      const lo = Math.max(0, Math.min(n - cells, t - Math.floor(cells / 2)));
      return [Math.max(0, lo), Math.min(n, Math.max(0, lo) + cells)];
    };

    function pooledImage() {
      const ready = model.get("pooled_key") === `${sel.layer}:${sel.head}`;
      const values = ready ? decodeMatrix(model.get("pooled_data"), blocks) : null;
      const { wrap, canvas, stage } = blockMatrix(meta, values, blocks, bs,
        `layer ${sel.layer}, head ${sel.head}: rows attend to columns, pooled over blocks of ${bs} tokens ` +
        `(${blocks} × ${blocks}); drag or click to zoom into a region at full resolution`);
      if (!canvas) return wrap;
      const box = el("div", "wb-att-drag");
      stage.appendChild(box);
      let from = null;
      const cellAt = (ev) => {
        const rect = canvas.getBoundingClientRect();
        return [Math.max(0, Math.min(blocks - 1, Math.floor(((ev.clientY - rect.top) / rect.height) * blocks))),
          Math.max(0, Math.min(blocks - 1, Math.floor(((ev.clientX - rect.left) / rect.width) * blocks))),
          ev.clientX - rect.left, ev.clientY - rect.top];
      };
      canvas.addEventListener("mousedown", (ev) => { from = cellAt(ev); ev.preventDefault(); });
      canvas.addEventListener("mousemove", (ev) => {
        if (!from) return;
        const to = cellAt(ev);
        box.style.display = "block";
        box.style.left = `${Math.min(from[2], to[2])}px`;
        box.style.top = `${Math.min(from[3], to[3])}px`;
        box.style.width = `${Math.abs(to[2] - from[2])}px`;
        box.style.height = `${Math.abs(to[3] - from[3])}px`;
      });
      canvas.addEventListener("mouseup", (ev) => {
        if (!from) return;
        const to = cellAt(ev);
        const start = from;
        from = null;
        box.style.display = "none";
        if (Math.abs(to[2] - start[2]) < 4 && Math.abs(to[3] - start[3]) < 4) {
          const [q0, q1] = around(to[0] * bs + Math.floor(bs / 2));
          const [k0, k1] = around(to[1] * bs + Math.floor(bs / 2));
          ask(q0, q1, k0, k1);
        } else {
          ask(Math.min(start[0], to[0]) * bs, Math.min(n, (Math.max(start[0], to[0]) + 1) * bs),
            Math.min(start[1], to[1]) * bs, Math.min(n, (Math.max(start[1], to[1]) + 1) * bs));
        }
      });
      return wrap;
    }

    function zoomed(zoom) {
      const wrap = el("div", "wb-att-matrix wb-att-zoomed");
      const back = el("button", "wb-att-zoom-out", "← whole head");
      back.type = "button";
      back.addEventListener("click", () => { model.set("zoom", {}); model.save_changes(); });
      const shown = model.get("zoom_shown");
      const match = sameHead(shown, sel) && ["q0", "q1", "k0", "k1"].every((k) => shown[k] === zoom[k]);
      const rows = zoom.q1 - zoom.q0, cols = zoom.k1 - zoom.k0;
      const values = match ? decodeMatrix(model.get("zoom_data"), rows, cols) : null;
      wrap.append(el("div", "wb-att-caption",
        `layer ${sel.layer}, head ${sel.head}: queries ${zoom.q0}–${zoom.q1 - 1} × keys ${zoom.k0}–${zoom.k1 - 1} ` +
        "at full resolution"), back);
      if (!values) { wrap.appendChild(el("div", "wb-att-loading", "loading this region…")); return wrap; }
      const px = Math.max(1, Math.min(20, Math.floor(MATRIX_PX / Math.max(rows, cols))));
      const step = Math.max(1, Math.ceil(12 / px)); // one label per 12 px at most
      const grid = el("div", "wb-att-zoom-grid");
      // A label every `step` cells along one axis: tokens first, first + step, ... at `side` px offsets.
      const labels = (className, count, first, side, length) => {
        const axis = el("div", className);
        axis.style[length] = `${count * px}px`;
        for (let i = 0; i < count; i += step) {
          const label = el("div", "wb-att-zoom-label", tokenLabel(meta, first + i));
          label.dataset.index = String(first + i);
          label.style[side] = `${i * px}px`;
          axis.appendChild(label);
        }
        return axis;
      };
      const colLabels = labels("wb-att-zoom-cols", cols, zoom.k0, "left", "width");
      const rowLabels = labels("wb-att-zoom-rows", rows, zoom.q0, "top", "height");
      const canvas = el("canvas", "wb-att-heat wb-att-zoom-canvas");
      drawHeatmap(canvas, values, rows, cols, cols * px);
      Object.assign(canvas.dataset, { q0: zoom.q0, q1: zoom.q1, k0: zoom.k0, k1: zoom.k1 });
      canvas.addEventListener("mousemove", (ev) => {
        const rect = canvas.getBoundingClientRect();
        const c = Math.floor(((ev.clientX - rect.left) / rect.width) * cols);
        const r = Math.floor(((ev.clientY - rect.top) / rect.height) * rows);
        if (r >= 0 && c >= 0 && r < rows && c < cols) {
          canvas.title = `${tokenLabel(meta, zoom.q0 + r)} (${zoom.q0 + r}) → ${tokenLabel(meta, zoom.k0 + c)} ` +
            `(${zoom.k0 + c}): ${values[r * cols + c].toFixed(4)}`;
        }
      });
      grid.append(el("div", "wb-att-corner", ""), colLabels, rowLabels, canvas);
      wrap.appendChild(grid);
      return wrap;
    }

    const refresh = () => {
      const zoom = model.get("zoom") || {};
      const offline = offlineMessage(meta, sel);
      const view = sameHead(zoom, sel) && zoom.q1 !== undefined && !offline ? zoomed(zoom) : pooledImage();
      node.replaceChildren(view);
      if (offline) node.appendChild(offline);
    };
    refresh();
    return { key, node, refresh };
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

  function rollout(meta) {
    const wrap = el("div", "wb-att-rollouts");
    const size = meta.rollout_size;
    const caption = "attention rollout through all layers (Abnar & Zuidema 2020)";
    if (size === meta.n) {
      wrap.appendChild(matrix(meta, decodeMatrix(model.get("rollout_data"), size), caption));
    } else {
      wrap.appendChild(blockMatrix(meta, decodeMatrix(model.get("rollout_data"), size), size, meta.rollout_block,
        `${caption}, between blocks of ${meta.rollout_block} tokens`).wrap);
    }
    if (meta.has_flow) wrap.appendChild(matrix(meta, decodeMatrix(model.get("flow_data"), meta.n), "attention flow"));
    return wrap;
  }

  function build(meta, mode, sel) {
    const key = `${mode}:${sel.layer}:${sel.head}:${model.get("hide_special")}`;
    if (mode === "model") return { key: null, node: thumbnails(meta) };
    if (mode === "stats") return { key: null, node: statsMap(meta) };
    if (mode === "rollout") return { key: null, node: rollout(meta) };
    if (mode === "matrix") {
      if (meta.long) return zoomableMatrix(meta, key);
      const ready = model.get("head_key") === `${sel.layer}:${sel.head}`;
      return { key: null, node: matrix(meta, ready ? decodeMatrix(model.get("head_data"), meta.n) : null,
        `layer ${sel.layer}, head ${sel.head}: rows attend to columns`) };
    }
    return meta.long ? virtualHeadView(meta, key) : headView(meta);
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
    const key = `${mode}:${sel.layer}:${sel.head}:${model.get("hide_special")}`;
    if (current && current.key === key && current.refresh) { current.refresh(); return; }
    if (current && current.destroy) current.destroy();
    current = build(meta, mode, sel);
    body.replaceChildren(current.node);
    if (current.mounted) current.mounted();
  }

  // The search box: Enter finds the next token whose shown text holds the query (any case), Shift+Enter
  // the one before; the head view scrolls to it and marks it.
  function find(backwards) {
    const meta = model.get("meta") || {};
    const query = search.value.trim().toLowerCase();
    if (!meta.n || !query) { searchStatus.textContent = ""; return; }
    const matches = visibleTokens(meta).filter((i) => tokenLabel(meta, i).toLowerCase().includes(query));
    if (!matches.length) {
      found = null;
      searchStatus.textContent = "no match";
      if (current && current.reveal) current.reveal(-1);
      return;
    }
    const from = found !== null ? found : topToken - (backwards ? 0 : 1);
    let k = backwards ? matches.findLastIndex((i) => i < from) : matches.findIndex((i) => i > from);
    if (k < 0) k = backwards ? matches.length - 1 : 0; // wrap around
    found = matches[k];
    searchStatus.textContent = `${k + 1} of ${matches.length} matches`;
    search.dataset.found = String(found);
    if (model.get("mode") !== "head") { model.set("mode", "head"); model.save_changes(); update(); }
    if (current && current.reveal) current.reveal(found);
  }
  const onSearchKey = (ev) => { if (ev.key === "Enter") { ev.preventDefault(); find(ev.shiftKey); } };
  const onSearchInput = () => { found = null; searchStatus.textContent = ""; };
  search.addEventListener("keydown", onSearchKey);
  search.addEventListener("input", onSearchInput);

  let frame = null;
  const schedule = () => { if (frame === null) frame = requestAnimationFrame(() => { frame = null; update(); }); };
  const traits = ["meta", "mode", "selected", "head_data", "head_key", "stat", "hide_special", "thumbs", "rollout_data",
    "flow_data", "window_data", "window_shown", "zoom", "zoom_data", "zoom_shown", "pooled_data", "pooled_key"];
  for (const t of traits) model.on(`change:${t}`, schedule);
  update();
  return () => {
    for (const t of traits) model.off(`change:${t}`, schedule);
    if (frame !== null) cancelAnimationFrame(frame);
    if (current && current.destroy) current.destroy();
    search.removeEventListener("keydown", onSearchKey);
    search.removeEventListener("input", onSearchInput);
  };
}

export default { render };
