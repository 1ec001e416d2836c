// Probe timeline: for each probe sentence, the expected token's probability over training steps (a
// line) and its rank, with the latest top guesses; redrawn as records arrive. Plain ES module.
// Token text is set with textContent only.

function chart(points, width, height) {
  // points: [[step, probability]]; y from 0 to a little above the largest probability, so that
  // an expected word climbing from 0.001 to 0.02 is still visible as a climb
  const box = svgEl("svg", { width, height, class: "wb-timeline-chart" });
  box.dataset.points = String(points.length);
  const pad = 4;
  const steps = points.map((p) => p[0]);
  const lo = Math.min(...steps, 0);
  const hi = Math.max(...steps, lo + 1);
  const top = Math.min(1, Math.max(0.01, ...points.map((p) => p[1])) * 1.15);
  const x = (s) => pad + ((s - lo) / (hi - lo)) * (width - 2 * pad);
  const y = (p) => height - pad - (p / top) * (height - 2 * pad);
  box.appendChild(svgEl("line", { x1: pad, x2: width - pad, y1: y(0), y2: y(0), class: "wb-timeline-axis" }));
  box.appendChild(svgEl("line", { x1: pad, x2: width - pad, y1: y(top), y2: y(top), class: "wb-timeline-axis" }));
  const label = svgEl("text", { x: pad + 2, y: pad + 9, class: "wb-timeline-scale" });
  label.textContent = `p = ${top.toPrecision(2)} at the top line`;
  box.appendChild(label);
  if (points.length) {
    const d = points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    box.appendChild(svgEl("path", { d, class: "wb-timeline-line" }));
    const last = points[points.length - 1];
    box.appendChild(svgEl("circle", { cx: x(last[0]), cy: y(last[1]), r: 3, class: "wb-timeline-dot" }));
  }
  return box;
}

function render({ model, el: host }) {
  const root = el("div", "wb-timeline");
  const title = el("div", "wb-timeline-title");
  const body = el("div", "wb-timeline-body");
  root.append(title, body);
  host.appendChild(root);

  function update() {
    const records = model.get("records") || [];
    title.textContent = model.get("title") || "";
    root.dataset.records = String(records.length);
    if (!records.length) {
      body.replaceChildren(el("div", "wb-timeline-empty", "no probe records yet: they arrive at each evaluation"));
      return;
    }
    const last = records[records.length - 1];
    root.dataset.step = String(last.step);
    const rows = last.probes.map((probe, i) => {
      const row = el("div", "wb-timeline-row");
      const text = el("div", "wb-timeline-text", probe.text);
      const expected = probe.expected === null ? "" : `expected “${probe.expected}”`;
      const meta = el("div", "wb-timeline-meta",
        probe.rank === null ? "no expected token" : `${expected}: rank ${probe.rank + 1}, p = ${probe.probability.toFixed(3)} at step ${last.step}`);
      const points = records.filter((r) => r.probes[i] && r.probes[i].probability !== null)
        .map((r) => [r.step, r.probes[i].probability]);
      const guesses = el("div", "wb-timeline-top");
      probe.top.forEach(([token, p]) => {
        const g = el("span", "wb-timeline-guess", token);
        g.title = p.toFixed(4);
        if (token === probe.expected) g.classList.add("wb-hit");
        guesses.appendChild(g);
      });
      const left = el("div", "wb-timeline-left");
      left.append(text, meta, guesses);
      row.append(left, chart(points, 260, 56));
      return row;
    });
    body.replaceChildren(...rows);
  }

  model.on("change:records", update);
  model.on("change:title", update);
  update();
  return () => { model.off("change:records", update); model.off("change:title", update); };
}

export default { render };
