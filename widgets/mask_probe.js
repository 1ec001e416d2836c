// Mask probe: a text box whose guesses update as you type (debounced), top-k bars, the logit lens
// (layers x positions, each cell's top token and probability) and a checkpoint slider; with a tuned lens,
// a "logit lens | tuned lens" switch above the grid. Plain ES module. Token text is set with textContent only.

function render({ model, el: host }) {
  const root = el("div", "wb-probe");
  const input = el("input", "wb-probe-input");
  input.type = "text";
  input.spellcheck = false;
  input.placeholder = "Type a sentence; write [MASK] where a masked LM should guess";
  input.value = model.get("text") || "";
  const sliderRow = el("div", "wb-probe-slider-row");
  const slider = el("input", "wb-probe-slider");
  slider.type = "range";
  slider.min = "0";
  slider.step = "1";
  const sliderLabel = el("span", "wb-probe-checkpoint");
  sliderRow.append(el("span", "wb-probe-label", "checkpoint "), slider, sliderLabel);
  const status = el("div", "wb-probe-status");
  const note = el("div", "wb-probe-note");
  const bars = el("div", "wb-probe-bars");
  const lensSwitch = el("div", "wb-probe-switch");
  const lensButtons = [["logit", "logit lens"], ["tuned", "tuned lens"]].map(([kind, label]) => {
    const button = el("button", "wb-probe-switch-option", label);
    button.type = "button";
    button.dataset.kind = kind;
    button.addEventListener("click", () => { model.set("lens_kind", kind); model.save_changes(); });
    return button;
  });
  lensSwitch.append(...lensButtons);
  const lensWrap = el("div", "wb-probe-lens");
  root.append(input, sliderRow, status, note, bars, lensSwitch, lensWrap);
  host.appendChild(root);

  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    status.textContent = "…";
    timer = setTimeout(() => { model.set("text", input.value); model.save_changes(); }, 250);
  });
  slider.addEventListener("input", () => {
    const labels = model.get("checkpoints") || [];
    sliderLabel.textContent = labels[Number(slider.value)] || "";
  });
  slider.addEventListener("change", () => { model.set("checkpoint", Number(slider.value)); model.save_changes(); });

  function drawBars(result) {
    const blocks = (result.predictions || []).map((p, i) => {
      const block = el("div", "wb-probe-block");
      const heading = result.kind === "masked-lm" ? `mask ${i + 1} (position ${p.position})` : "next token";
      block.appendChild(el("div", "wb-probe-heading", heading));
      p.tokens.forEach((token, k) => {
        const row = el("div", "wb-probe-bar-row");
        row.dataset.rank = String(k);
        const label = el("span", "wb-probe-token", token);
        const track = el("span", "wb-probe-track");
        const bar = el("span", "wb-probe-bar");
        bar.style.width = `${Math.max(1, Math.round(p.probabilities[k] * 100))}%`;
        track.appendChild(bar);
        row.append(label, track, el("span", "wb-probe-prob", p.probabilities[k].toFixed(3)));
        block.appendChild(row);
      });
      return block;
    });
    bars.replaceChildren(...blocks);
  }

  function drawLens(lens) {
    if (!lens) { lensWrap.replaceChildren(); return; }
    const n = lens.tokens.length;
    const grid = el("div", "wb-probe-grid");
    grid.style.gridTemplateColumns = `max-content repeat(${n}, minmax(44px, 1fr))`;
    grid.appendChild(el("div", "wb-probe-corner", `${lens.name || "logit lens"} · p(${lens.target})`));
    lens.tokens.forEach((t, j) => {
      const head = el("div", "wb-probe-col", t);
      if (j === lens.read) head.classList.add("wb-read");
      grid.appendChild(head);
    });
    for (let r = lens.layers.length - 1; r >= 0; r--) {
      grid.appendChild(el("div", "wb-probe-rowname", lens.layers[r]));
      for (let j = 0; j < n; j++) {
        const top = lens.top[r][j];
        const p = lens.top_prob[r][j];
        const cell = el("div", "wb-probe-cell", top);
        cell.style.background = sequential(p);
        if (p > 0.55) cell.style.color = "white";
        if (top === lens.target) cell.classList.add("wb-target");
        const alts = [`${top} ${p.toFixed(3)}`].concat(
          lens.runners_up[r][j].map((a, k) => `${a} ${lens.runner_up_probs[r][j][k].toFixed(3)}`)).join(", ");
        cell.title = `${lens.layers[r]}, “${lens.tokens[j]}”: ${alts}; p(${lens.target}) = ${lens.target_prob[r][j].toFixed(4)}`;
        grid.appendChild(cell);
      }
    }
    lensWrap.replaceChildren(grid);
  }

  function update() {
    const labels = model.get("checkpoints") || [];
    slider.max = String(Math.max(0, labels.length - 1));
    slider.value = String(model.get("checkpoint"));
    sliderLabel.textContent = labels[model.get("checkpoint")] || "";
    sliderRow.style.display = labels.length > 1 ? "" : "none";
    if (document.activeElement !== input && input.value !== model.get("text")) input.value = model.get("text") || "";
    const error = model.get("error");
    const result = model.get("result") || {};
    root.dataset.model = result.model || "";
    const tunedLabel = model.get("tuned_label") || "";
    const kind = model.get("lens_kind") || "logit";
    lensSwitch.style.display = tunedLabel && model.get("show_lens") ? "" : "none";
    lensButtons[1].title = tunedLabel;
    for (const button of lensButtons) button.classList.toggle("wb-selected", button.dataset.kind === kind);
    note.textContent = error ? "" : result.note || "";
    if (error) {
      status.textContent = error;
      status.classList.add("wb-error");
      bars.replaceChildren();
      lensWrap.replaceChildren();
      return;
    }
    status.classList.remove("wb-error");
    status.textContent = result.model ? `${result.model} · ${result.ms} ms` : "";
    drawBars(result);
    drawLens(result.lens);
  }

  const traits = ["result", "error", "checkpoints", "checkpoint", "text", "lens_kind", "tuned_label", "show_lens"];
  for (const t of traits) model.on(`change:${t}`, update);
  update();
  return () => { clearTimeout(timer); for (const t of traits) model.off(`change:${t}`, update); };
}

export default { render };
