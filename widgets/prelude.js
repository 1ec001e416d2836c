// The views' shared prelude: workbench/ui/_assets.py puts it in front of each view's module (plain text,
// no build step), so the live widget and the standalone export run the same helpers. Names declared here
// are taken in every module: a module uses them and declares none of them again.

const SVG_NS = "http://www.w3.org/2000/svg";

// An HTML element; its text is set with textContent, never as HTML: tokens, names and messages are data.
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

// An SVG element with its attributes.
function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

// Colours as [r, g, b]. ColorBrewer PuOr is diverging and colour-blind safe: orange raises the target's
// probability, purple lowers it. ColorBrewer Blues' darkest is the sequential scale's end.
const PUOR_POSITIVE = [179, 88, 6]; // #b35806
const PUOR_NEGATIVE = [84, 39, 136]; // #542788
const PUOR_MIDDLE = [247, 247, 247];
const WHITE = [255, 255, 255];
const BLUE = [8, 81, 156]; // #08519c

// The CSS colour a share `a` of the way from `from` to `to` (a is clamped to [0, 1]).
function mix(from, to, a) {
  const c = from.map((m, i) => Math.round(m + (to[i] - m) * Math.max(0, Math.min(1, a))));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// t in [-1, 1] on PuOr: purple below 0, near-white at 0, orange above.
function diverging(t) {
  return mix(PUOR_MIDDLE, t >= 0 ? PUOR_POSITIVE : PUOR_NEGATIVE, Math.abs(t));
}

// t in [0, 1] from white to dark blue (attention weights, probabilities).
function sequential(t) {
  return mix(WHITE, BLUE, t);
}

// A binary trait's bytes: anywidget hands them over as a DataView (other hosts: ArrayBuffer, a typed array).
function bytesOf(value) {
  if (!value) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (value instanceof DataView) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (value.buffer instanceof ArrayBuffer) return new Uint8Array(value.buffer, value.byteOffset || 0, value.byteLength);
  return new Uint8Array(0);
}
