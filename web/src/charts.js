// The two latency charts, drawn on <canvas> (no library): the inter-token gaps of the current
// answer as one bar per token, and the session's histogram of gaps in doubling-width bins. Both
// sized for the device's pixel ratio; numbers go through fillText, never markup.

const AXIS = "#6b7280";
const BAR = "#2563eb";
const FONT = "11px system-ui, sans-serif";

function prepare(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.font = FONT;
  return { g, w, h };
}

function niceMax(v) {
  const steps = [1, 2, 5];
  let m = 0.1;
  for (;;) {
    for (const s of steps) if (m * s >= v) return m * s;
    m *= 10;
  }
}

// gaps: milliseconds between consecutive tokens of one answer.
export function drawTimeline(canvas, gaps) {
  const { g, w, h } = prepare(canvas);
  const left = 34, bottom = 14, top = 6;
  const ph = h - bottom - top, pw = w - left - 4;
  const max = niceMax(Math.max(0.1, ...gaps));
  g.fillStyle = AXIS;
  g.fillText(`${max}`, 2, top + 8);
  g.fillText("0", 2, top + ph);
  g.fillText(`${gaps.length} gaps`, left, h - 2);
  g.strokeStyle = "#d1d5db";
  g.beginPath();
  g.moveTo(left, top + ph + 0.5);
  g.lineTo(w - 4, top + ph + 0.5);
  g.stroke();
  if (!gaps.length) return;
  const bw = pw / Math.max(gaps.length, 40);
  g.fillStyle = BAR;
  gaps.forEach((v, i) => {
    const bh = Math.max(1, (Math.min(v, max) / max) * ph);
    g.fillRect(left + i * bw, top + ph - bh, Math.max(1, bw - 1), bh);
  });
}

// Bin edges in ms: [0,0.25), [0.25,0.5), ... doubling, the last bin open.
export const BIN_EDGES = [0, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

export function binOf(ms) {
  let i = 0;
  while (i + 1 < BIN_EDGES.length && ms >= BIN_EDGES[i + 1]) i++;
  return i;
}

export function drawHistogram(canvas, counts) {
  const { g, w, h } = prepare(canvas);
  const left = 4, bottom = 14, top = 12;
  const ph = h - bottom - top, pw = w - left - 4;
  const n = counts.length;
  const bw = pw / n;
  const max = Math.max(1, ...counts);
  g.fillStyle = AXIS;
  for (let i = 0; i < n; i += 2) {
    const e = BIN_EDGES[i];
    g.fillText(e < 1 ? `${e}` : `${e}`, left + i * bw, h - 2);
  }
  g.fillText(`ms (max bin ${max})`, w - 100, 10);
  counts.forEach((c, i) => {
    if (!c) return;
    const bh = Math.max(1, (c / max) * ph);
    g.fillStyle = BAR;
    g.fillRect(left + i * bw + 1, top + ph - bh, bw - 2, bh);
  });
}
