// What compression changed: a table of deltas, a layers x heads map of attention drift
// (Jensen-Shannon, bits), and both models' token attributions on one text, row over row.
// Plain ES module; every piece of text is set with textContent, never as HTML.

const DRIFT = [165, 15, 21]; // ColorBrewer Reds, darkest

function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (Math.abs(v) >= 100) return v.toFixed(1);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

function table(rows, agreement) {
  const t = el("table", "wb-comp-table");
  const head = el("tr");
  for (const h of ["", "original", "compressed", "change"]) head.appendChild(el("th", null, h));
  t.appendChild(head);
  for (const row of rows) {
    const tr = el("tr");
    tr.appendChild(el("td", null, row.label));
    tr.appendChild(el("td", null, fmt(row.original)));
    tr.appendChild(el("td", null, fmt(row.compressed)));
    let change = "–";
    let cls = null;
    if (row.original !== null && row.compressed !== null) {
      if (row.label.startsWith("weights") || row.label.startsWith("latency")) {
        const ratio = row.original / row.compressed;
        const speed = ratio >= 1 ? `${ratio.toFixed(2)}× faster` : `${(1 / ratio).toFixed(2)}× slower`;
        change = row.label.startsWith("weights") ? `×${(row.compressed / row.original).toFixed(2)}` : speed;
        cls = ratio > 1.001 ? "wb-comp-better" : ratio < 0.999 ? "wb-comp-worse" : null;
      } else {
        const delta = row.compressed - row.original;
        change = (delta >= 0 ? "+" : "") + delta.toPrecision(3);
        const better = row.lower_is_better ? delta < 0 : delta > 0;
        cls = Math.abs(delta) < 1e-12 ? null : better ? "wb-comp-better" : "wb-comp-worse";
      }
    }
    const td = el("td", cls, change);
    tr.appendChild(td);
    t.appendChild(tr);
  }
  if (agreement !== null && agreement !== undefined) {
    const tr = el("tr");
    tr.append(el("td", null, "same prediction"), el("td"), el("td"), el("td", null, `${(agreement * 100).toFixed(1)}%`));
    t.appendChild(tr);
  }
  return t;
}

function driftMap(drift, status) {
  const layers = drift.length;
  const heads = layers ? drift[0].length : 0;
  const wrap = el("div");
  if (!layers) {
    wrap.appendChild(el("div", "wb-comp-note", "no texts were given, so attention was not compared"));
    return wrap;
  }
  let top = 0;
  for (const row of drift) for (const v of row) top = Math.max(top, v || 0);
  const scale = Math.max(top, 0.05); // a faint map stays faint: small drift is not painted as large
  const grid = el("div", "wb-comp-grid");
  grid.style.gridTemplateColumns = `28px repeat(${heads}, 22px)`;
  grid.appendChild(el("div", "wb-comp-axis", ""));
  for (let h = 0; h < heads; h++) grid.appendChild(el("div", "wb-comp-axis", String(h)));
  for (let l = 0; l < layers; l++) {
    grid.appendChild(el("div", "wb-comp-axis", `L${l}`));
    for (let h = 0; h < heads; h++) {
      const v = drift[l][h] || 0;
      const cell = el("div", "wb-comp-cell");
      cell.style.background = mix(WHITE, DRIFT, v / scale);
      cell.dataset.layer = l;
      cell.dataset.head = h;
      const words = `layer ${l}, head ${h}: ${v.toPrecision(3)} bits`;
      cell.title = words;
      cell.addEventListener("mouseenter", () => { status.textContent = words; });
      grid.appendChild(cell);
    }
  }
  wrap.appendChild(grid);
  wrap.appendChild(el("div", "wb-comp-note", `darkest = ${scale.toPrecision(2)} bits; white = the same attention`));
  return wrap;
}

function tokenRow(label, example, key, status) {
  const row = el("div", "wb-comp-tokens");
  row.appendChild(el("span", "wb-comp-rowlabel", label));
  const scores = example[key];
  let top = 0;
  example.features.forEach((f, i) => { if (f) top = Math.max(top, Math.abs(scores[i] || 0)); });
  example.tokens.forEach((token, i) => {
    const span = el("span", example.special[i] ? "wb-comp-token wb-comp-special" : "wb-comp-token", token);
    if (example.features[i]) {
      const v = scores[i] || 0;
      span.style.background = diverging(top ? v / top : 0);
      span.addEventListener("mouseenter", () => {
        status.textContent = `${label}: ${JSON.stringify(token)} ${v >= 0 ? "+" : ""}${v.toPrecision(3)}`;
      });
    }
    row.appendChild(span);
    if (example.spaces[i]) row.appendChild(document.createTextNode(" "));
  });
  return row;
}

function render({ model, el: host }) {
  const root = el("div", "wb-compression");
  host.appendChild(root);

  function draw() {
    const r = model.get("report") || {};
    root.replaceChildren();
    const status = el("div", "wb-comp-note", "hover a head or a token for its value");
    root.appendChild(el("div", "wb-comp-title", `${r.title || ""}${r.method ? ` (${r.method})` : ""}`));
    root.appendChild(table(r.rows || [], r.agreement));
    root.appendChild(el("div", "wb-comp-section",
      `Attention drift per head${r.drift_mean !== null && r.drift_mean !== undefined ? ` — mean ${fmt(r.drift_mean)} bits` : ""}`));
    root.appendChild(driftMap(r.drift || [], status));
    const examples = r.examples || [];
    if (examples.length) {
      const section = el("div", "wb-comp-section",
        `Attributions (${r.attribution_method}), mean Spearman ${fmt(r.mean_spearman)}`);
      root.appendChild(section);
      let index = Math.min(model.get("example") || 0, examples.length - 1);
      if (examples.length > 1) {
        const select = el("select", "wb-comp-text");
        examples.forEach((e, i) => {
          const option = el("option", null, e.text.length > 60 ? `${e.text.slice(0, 60)}…` : e.text);
          option.value = String(i);
          select.appendChild(option);
        });
        select.value = String(index);
        select.addEventListener("change", () => { model.set("example", Number(select.value)); model.save_changes(); });
        root.appendChild(select);
      }
      const e = examples[index];
      root.appendChild(el("div", "wb-comp-note", `target: ${e.target} · Spearman ${fmt(e.spearman)}`));
      root.appendChild(tokenRow("original", e, "original", status));
      root.appendChild(tokenRow("compressed", e, "compressed", status));
    }
    root.appendChild(status);
  }

  draw();
  model.on("change:report", draw);
  model.on("change:example", draw);
  return () => {
    model.off("change:report", draw);
    model.off("change:example", draw);
  };
}

export default { render };
