// Token attributions: a row per method for one text and target, tokens coloured on a diverging,
// colour-blind-safe scale (ColorBrewer PuOr), faithfulness beside each row. Plain ES module.
// Token text is set with textContent only, never as HTML.

const METRICS = [
  { key: "comprehensiveness", label: "compr. ↑", better: "high",
    help: "comprehensiveness: drop in probability when the top-ranked tokens are removed (higher is more faithful)" },
  { key: "sufficiency", label: "suff. ↓", better: "low",
    help: "sufficiency: drop in probability when only the top-ranked tokens are kept (lower is more faithful)" },
  { key: "deletion_auc", label: "del. AUC ↓", better: "low",
    help: "area under the deletion curve, removing top-ranked tokens first (lower is more faithful)" },
];

function signed(v) {
  if (v === 0) return "0";
  const text = Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4 ? v.toExponential(2) : v.toPrecision(3);
  return (v > 0 ? "+" : "") + text;
}

function render({ model, el: host }) {
  const root = el("div", "wb-attribution");
  const toolbar = el("div", "wb-attr-toolbar");
  const title = el("span", "wb-attr-title");
  const textLabel = el("label", "wb-attr-label", "text ");
  const textSelect = el("select", "wb-attr-text");
  textLabel.appendChild(textSelect);
  const targetLabel = el("label", "wb-attr-label", "target ");
  const targetSelect = el("select", "wb-attr-target");
  targetLabel.appendChild(targetSelect);
  const legend = el("span", "wb-attr-legend");
  const lo = el("span", "wb-attr-swatch", "lowers");
  lo.style.background = diverging(-1);
  lo.style.color = "white";
  const mid = el("span", "wb-attr-swatch", "0");
  mid.style.background = diverging(0);
  const hi = el("span", "wb-attr-swatch", "raises");
  hi.style.background = diverging(1);
  hi.style.color = "white";
  legend.append(lo, mid, hi);
  toolbar.append(title, textLabel, targetLabel, legend);
  const status = el("div", "wb-attr-status", "hover a token for its value");
  const note = el("div", "wb-attr-note");
  const table = el("div", "wb-attr-table");
  root.append(toolbar, note, table, status);
  host.appendChild(root);

  textSelect.addEventListener("change", () => {
    model.set("text_index", Number(textSelect.value));
    model.set("target", "");
    model.save_changes();
  });
  targetSelect.addEventListener("change", () => {
    model.set("target", targetSelect.value);
    model.save_changes();
  });

  function tokenRow(row) {
    const line = el("div", "wb-attr-tokens");
    // Each row to its own largest magnitude (methods differ in units), unless the row names its scale's end:
    // a probability is coloured on 0..1, so a text with nothing odd in it stays pale.
    let max = row.scale || 0;
    if (!row.scale) row.scores.forEach((s, i) => { if (row.features[i]) max = Math.max(max, Math.abs(s)); });
    row.tokens.forEach((text, i) => {
      const span = el("span", "wb-attr-token", text);
      span.dataset.index = String(i);
      span.dataset.score = String(row.scores[i]);
      if (row.special[i]) span.classList.add("wb-special");
      else if (!row.features[i]) span.classList.add("wb-explained");
      else {
        const t = max > 0 ? row.scores[i] / max : 0;
        span.style.background = diverging(t);
        if (Math.abs(t) > 0.6) span.style.color = "white";
      }
      const value = row.features[i] ? signed(row.scores[i]) : (row.special[i] ? "special token" : "the position explained");
      span.title = `${text}: ${value}`;
      span.addEventListener("mouseenter", () => {
        status.textContent = `${row.method} · “${text}” · ${value}`;
        status.dataset.token = String(i);
        status.dataset.method = row.method;
      });
      line.appendChild(span);
      if (row.spaces[i]) line.appendChild(document.createTextNode(" "));
    });
    return line;
  }

  function update() {
    const rows = model.get("rows") || [];
    const texts = model.get("texts") || [];
    title.textContent = model.get("title") || "";
    // A view that colours something else than an attribution names its ends (low, middle, high) itself.
    const [low, middle, high] = model.get("legend") || ["lowers", "0", "raises"];
    lo.textContent = low;
    mid.textContent = middle;
    hi.textContent = high;
    lo.hidden = !low;
    const textIndex = Math.min(model.get("text_index") || 0, Math.max(0, texts.length - 1));
    if (textSelect.options.length !== texts.length) {
      textSelect.replaceChildren(...texts.map((t, i) => new Option(`${i + 1}: ${t.length > 60 ? t.slice(0, 57) + "…" : t}`, String(i))));
    }
    textSelect.value = String(textIndex);
    textLabel.style.display = texts.length > 1 ? "" : "none";
    const ofText = rows.filter((r) => r.text === textIndex);
    const targets = [...new Set(ofText.map((r) => r.target_name))];
    let target = model.get("target");
    if (!targets.includes(target)) target = targets[0];
    targetSelect.replaceChildren(...targets.map((t) => new Option(t, t)));
    targetSelect.value = target;
    targetLabel.style.display = targets.length > 1 ? "" : "none";
    const shown = ofText.filter((r) => r.target_name === target);
    const notes = [...new Set(shown.map((r) => r.note).filter((n) => n))];
    note.textContent = notes.join(" ");
    note.style.display = notes.length ? "" : "none";

    const best = {};
    for (const m of METRICS) {
      const values = shown.map((r) => (r.faithfulness ? r.faithfulness[m.key] : null)).filter((v) => v !== null);
      if (values.length > 1) best[m.key] = m.better === "high" ? Math.max(...values) : Math.min(...values);
    }
    const header = el("div", "wb-attr-row wb-attr-header");
    const p = shown.length ? `p(${target}) = ${shown[0].score.toFixed(3)}` : "";
    header.append(el("div", "wb-attr-method", "method"), el("div", "wb-attr-probability", p));
    for (const m of METRICS) {
      const cell = el("div", "wb-attr-metric", m.label);
      cell.title = m.help;
      header.appendChild(cell);
    }
    const body = [header];
    for (const row of shown) {
      const line = el("div", "wb-attr-row");
      line.dataset.method = row.method;
      const name = el("div", "wb-attr-method", row.method.replace(/_/g, " "));
      name.title = `${row.route} · ${row.seconds} s`;
      line.append(name, tokenRow(row));
      for (const m of METRICS) {
        const v = row.faithfulness ? row.faithfulness[m.key] : null;
        const cell = el("div", "wb-attr-metric", v === null ? "–" : v.toFixed(3));
        cell.dataset.metric = m.key;
        if (v !== null && best[m.key] === v) cell.classList.add("wb-best");
        cell.title = m.help;
        line.appendChild(cell);
      }
      body.push(line);
    }
    table.replaceChildren(...body);
  }

  const traits = ["rows", "texts", "text_index", "target", "title", "legend"];
  for (const t of traits) model.on(`change:${t}`, update);
  update();
  return () => { for (const t of traits) model.off(`change:${t}`, update); };
}

export default { render };
