// The map of a PatchingResult: layers down, token positions (or heads) across, each cell on a diverging
// scale (ColorBrewer PuOr) centred at zero and symmetric: ±meta.extent at the ends, shown in the legend.
// The values arrive as one float32 buffer (rows x columns); hover a cell for its site, token and value.
// On a map of heads a click asks the kernel to open that head; its AttentionView shows below the map.
// Plain ES module; every token, name and message is set with textContent, never as HTML.

const CELL_H = 16; // px of a map row
const MAP_W = 860; // px the columns share at most
const LEGEND_STEPS = 11; // swatches from -extent to +extent

const MEANING = {
  patching: "0 = the corrupted run, 1 = the clean run",
  attribution_patching: "first-order estimate: 0 = the corrupted run, 1 = the clean run",
  causal_tracing: "0 = the subject noised, 1 = the clean run",
  ablation: "the change of the metric when the head is ablated (0 = none)",
};

function fmt(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v === 0) return "0";
  return Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4 ? v.toExponential(2) : v.toPrecision(3);
}

function signed(v) {
  return (Number.isFinite(v) && v > 0 ? "+" : "") + fmt(v);
}

// The buffer as (rows * columns) float32, or null when it is not whole.
function decodeValues(raw, rows, columns) {
  const bytes = bytesOf(raw);
  if (bytes.length < rows * columns * 4) return null;
  return new Float32Array(bytes.slice(0, rows * columns * 4).buffer);
}

// What a value means in the metric's own units: patching maps are normalised between the two runs; an
// ablation map holds the metric with the head ablated minus the plain run's.
function rawMeaning(meta, v) {
  const clean = meta.clean_metric;
  const corrupted = meta.corrupted_metric;
  if (clean === null || !Number.isFinite(v)) return "";
  if (meta.method === "ablation") return `${meta.metric} = ${fmt(clean + v)} with the head ablated (plain run ${fmt(clean)})`;
  if (corrupted === null) return "";
  const raw = corrupted + v * (clean - corrupted);
  const base = meta.method === "causal_tracing" ? "noised" : "corrupted";
  const approx = meta.method === "attribution_patching" ? "≈" : "=";
  return `${meta.metric} ${approx} ${fmt(raw)} (${base} ${fmt(corrupted)}, clean ${fmt(clean)})`;
}

function legend(meta) {
  const box = el("span", "wb-patch-legend");
  box.dataset.extent = String(meta.extent);
  box.appendChild(el("span", "wb-patch-legend-end", signed(-meta.extent)));
  for (let i = 0; i < LEGEND_STEPS; i++) {
    const t = (2 * i) / (LEGEND_STEPS - 1) - 1;
    const swatch = el("span", "wb-patch-swatch");
    swatch.style.background = diverging(t);
    swatch.title = signed(t * meta.extent);
    box.appendChild(swatch);
  }
  box.appendChild(el("span", "wb-patch-legend-end", signed(meta.extent)));
  box.appendChild(el("span", "wb-patch-muted", MEANING[meta.method] || ""));
  return box;
}

function summary(meta) {
  const parts = [`metric: ${meta.metric}`];
  if (meta.method === "ablation") parts.push(`plain run ${fmt(meta.clean_metric)}`);
  else {
    parts.push(`clean ${fmt(meta.clean_metric)}`);
    parts.push(`${meta.method === "causal_tracing" ? "noised" : "corrupted"} ${fmt(meta.corrupted_metric)}`);
  }
  if (meta.method === "causal_tracing" && meta.samples) parts.push(`${meta.samples} noise samples`);
  if (meta.method === "patching" || meta.method === "attribution_patching") parts.push(`direction ${meta.direction}`);
  if (meta.pearson_r !== null && meta.pearson_r !== undefined) parts.push(`r = ${meta.pearson_r.toFixed(3)} against full patching`);
  return el("div", "wb-patch-info", parts.join(" · "));
}

// One text's tokens, the marked ones (differing, or noised) outlined and named in their tooltip.
function tokenLine(label, text, mark) {
  const line = el("div", "wb-patch-text");
  line.appendChild(el("span", "wb-patch-rowlabel", label));
  const marked = new Set(text.marked);
  text.tokens.forEach((token, i) => {
    const span = el("span", "wb-patch-token", token);
    span.dataset.index = String(i);
    if (text.special[i]) span.classList.add("wb-special");
    if (marked.has(i)) {
      span.classList.add(mark === "noised" ? "wb-patch-noised" : "wb-patch-differs");
      span.title = mark === "noised" ? "noised" : "differs between the clean and the corrupted text";
    }
    line.appendChild(span);
  });
  if (mark === "noised" && marked.size) line.appendChild(el("span", "wb-patch-tag", "noised"));
  return line;
}

function texts(meta) {
  const box = el("div", "wb-patch-texts");
  const noised = meta.method === "causal_tracing";
  box.appendChild(tokenLine("clean", meta.clean, noised ? "noised" : "differs"));
  if (meta.corrupted) box.appendChild(tokenLine("corrupted", meta.corrupted, "differs"));
  return box;
}

function render({ model, el: host, host: widgets }) {
  const root = el("div", "wb-patching");
  const status = el("div", "wb-patch-status");
  const message = el("div", "wb-patch-message");
  const slot = el("div", "wb-patch-attention");
  host.appendChild(root);
  const children = new AbortController();
  let shownRef = null;
  let meta = {};
  let values = null;

  function siteName(r, c) {
    const names = meta.site_names[r] || [];
    return names.length === 1 ? names[0] : names[c];
  }

  function describe(r, c) {
    const v = values ? values[r * meta.columns + c] : NaN;
    const parts = [siteName(r, c)];
    if (!meta.by_head) parts.push(`position ${meta.column_ids[c]} “${meta.clean.tokens[meta.column_ids[c]] ?? ""}”`);
    parts.push(Number.isFinite(v) ? signed(v) : "no value");
    const raw = rawMeaning(meta, v);
    if (raw) parts.push(raw);
    return { v, text: parts.join(" · ") };
  }

  function axisLabel(c) {
    if (meta.by_head) return el("div", "wb-patch-xlabel", `H${meta.column_ids[c]}`);
    const position = meta.column_ids[c];
    const label = el("div", "wb-patch-xlabel wb-patch-xtoken", meta.clean.tokens[position] ?? "");
    label.dataset.position = String(position);
    if (meta.clean.marked.includes(position)) label.classList.add("wb-patch-marked");
    if (position === meta.read_position) {
      label.classList.add("wb-patch-read");
      label.title = "the metric reads the logits here";
    }
    return label;
  }

  function map() {
    const grid = el("div", "wb-patch-map");
    const width = Math.max(10, Math.min(48, Math.floor(MAP_W / Math.max(1, meta.columns))));
    grid.style.gridTemplateColumns = `40px repeat(${meta.columns}, ${width}px)`;
    const clickable = meta.by_head && !meta.standalone;
    for (let r = 0; r < meta.rows; r++) {
      grid.appendChild(el("div", "wb-patch-ylabel", meta.row_labels?.[r] ?? `L${meta.layers[r]}`));
      for (let c = 0; c < meta.columns; c++) {
        const v = values ? values[r * meta.columns + c] : NaN;
        const cell = el("div", "wb-patch-cell");
        cell.dataset.row = String(r);
        cell.dataset.col = String(c);
        cell.dataset.layer = String(meta.layers[r]);
        cell.dataset.column = String(meta.column_ids[c]);
        cell.dataset.value = String(v);
        if (Number.isFinite(v)) cell.style.background = diverging(v / meta.extent);
        else cell.classList.add("wb-patch-missing");
        if (clickable) cell.classList.add("wb-patch-clickable");
        grid.appendChild(cell);
      }
    }
    const corner = el("div", "wb-patch-corner", meta.by_head ? "head" : "token");
    grid.appendChild(corner);
    grid.style.gridTemplateRows = `repeat(${meta.rows}, ${CELL_H}px) auto`;
    for (let c = 0; c < meta.columns; c++) grid.appendChild(axisLabel(c));
    grid.addEventListener("mouseover", (event) => {
      const cell = event.target.closest(".wb-patch-cell");
      if (!cell) return;
      const { text } = describe(Number(cell.dataset.row), Number(cell.dataset.col));
      status.textContent = text;
      status.dataset.layer = cell.dataset.layer;
      status.dataset.column = cell.dataset.column;
      cell.title = text;
    });
    grid.addEventListener("click", (event) => {
      const cell = event.target.closest(".wb-patch-cell");
      if (!cell || !meta.by_head) return;
      const layer = Number(cell.dataset.layer);
      const head = Number(cell.dataset.column);
      if (meta.standalone) {
        message.textContent = `Head ${layer}.${head}: this page has no kernel; open heads from the view in a notebook.`;
        return;
      }
      model.send({ open: "head", layer, head });
    });
    return grid;
  }

  function draw() {
    meta = model.get("meta") || {};
    if (!meta.rows) return;
    values = decodeValues(model.get("values"), meta.rows, meta.columns);
    const toolbar = el("div", "wb-patch-toolbar");
    toolbar.append(el("span", "wb-patch-title", meta.title), legend(meta));
    const note = el("div", "wb-patch-note", meta.note || "");
    note.style.display = meta.note ? "" : "none";
    const hint = meta.by_head && !meta.standalone ? "; click a head to open its attention" : "";
    status.textContent = `hover a cell for its value${hint}`;
    root.replaceChildren(toolbar, summary(meta), note, texts(meta), map(), status, message, slot);
  }

  function showMessage() {
    message.textContent = model.get("message") || "";
  }

  // The AttentionView the kernel made for an opened head: rendered once; later clicks change its traits.
  function showAttention() {
    const ref = model.get("attention");
    if (!ref || ref === shownRef) return;
    if (!widgets || !widgets.getWidget) {
      message.textContent = "This front end cannot show a view inside another; display view.attention in a cell.";
      return;
    }
    shownRef = ref;
    slot.replaceChildren();
    widgets.getWidget(ref)
      .then((child) => child.render({ el: slot, signal: children.signal }))
      .catch((error) => { message.textContent = `The attention view could not open: ${error.message}`; });
  }

  draw();
  showMessage();
  showAttention();
  const handlers = [["change:meta", draw], ["change:values", draw], ["change:message", showMessage],
    ["change:attention", showAttention]];
  for (const [name, f] of handlers) model.on(name, f);
  return () => {
    for (const [name, f] of handlers) model.off(name, f);
    children.abort();
  };
}

export default { render };
