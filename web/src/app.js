// The playground page's controller: reads the form, sends one streamed request through the API
// chosen (apis.js), renders each token as it arrives, times the stream with the Performance API
// (performance.now()), draws the latency charts and polls /metrics for the server panel. Every
// piece of model output and server text reaches the page through textContent or fillText, never
// as markup. The API key lives in sessionStorage only.
import { buildRequest, errorMessage } from "./apis.js";
import { BIN_EDGES, binOf, drawHistogram, drawTimeline } from "./charts.js";
import { parsePrometheus, serverFigures } from "./metrics.js";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "lmstream.apiKey";
const POLL_MS = 1000;
// The page is /ui on a server, or /endpoints/{name}/ui through the control plane, which passes
// that endpoint's routes on to one of its workers: every request goes below the same prefix.
const BASE = location.pathname.replace(/\/ui\/?$/, "");

const state = {
  info: null,
  turns: [], // finished exchanges: {user, answer}
  busy: null, // {controller} while a request streams
  sessionGaps: [],
  bins: new Array(BIN_EDGES.length).fill(0),
  metricsPrev: null,
  pollTimer: 0,
};

// ---------------------------------------------------------------- helpers

function fmtMs(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return "–";
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function setStat(id, text, ms) {
  const el = $(id);
  el.textContent = text;
  if (ms === undefined) delete el.dataset.ms;
  else el.dataset.ms = String(ms);
}

function setStatus(text, kind = "") {
  const s = $("status");
  s.textContent = text;
  s.dataset.kind = kind;
}

function key() {
  return $("apikey").value.trim();
}

function authHeaders() {
  const k = key();
  return k ? { Authorization: `Bearer ${k}` } : {};
}

function numberField(id, integer) {
  const v = $(id).value.trim();
  if (v === "") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${id} must be a number`);
  if (integer && !Number.isInteger(n)) throw new Error(`${id} must be an integer`);
  return n;
}

function params() {
  const p = {
    max_new_tokens: numberField("max_new_tokens", true) ?? 128,
    temperature: numberField("temperature", false),
    top_p: numberField("top_p", false),
    top_k: numberField("top_k", true),
    repetition_penalty: numberField("repetition_penalty", false),
    seed: numberField("seed", true),
    stop: $("stop_seqs").value.split("\n").filter((s) => s !== ""),
  };
  return p;
}

// ---------------------------------------------------------------- conversation view

function addMessage(role, text) {
  const m = document.createElement("div");
  m.className = `msg ${role}`;
  const who = document.createElement("div");
  who.className = "who";
  who.textContent = role === "user" ? "You" : role === "assistant" ? "Model" : "System";
  const body = document.createElement("div");
  body.className = "body";
  if (text !== undefined) body.textContent = text;
  m.append(who, body);
  $("history").append(m);
  m.scrollIntoView({ block: "end" });
  return m;
}

function describeToken(t) {
  const id = t.id === undefined ? "id n/a" : `id ${t.id}`;
  const lp = t.logprob === undefined || t.logprob === null ? "logprob n/a" : `logprob ${Number(t.logprob).toFixed(4)}`;
  return `${JSON.stringify(t.text)} · ${id} · ${lp}${t.special ? " · special" : ""}`;
}

function inspect(span) {
  const body = span.parentElement;
  const t = body && body.tokens && body.tokens[Number(span.dataset.i)];
  if (!t) return;
  for (const s of document.querySelectorAll(".tok.sel")) s.classList.remove("sel");
  span.classList.add("sel");
  $("inspector").textContent = describeToken(t);
}

function wireInspector() {
  const h = $("history");
  h.addEventListener("mouseover", (e) => {
    if (e.target.classList && e.target.classList.contains("tok")) inspect(e.target);
  });
  h.addEventListener("keydown", (e) => {
    const body = e.target.closest && e.target.closest(".msg.assistant .body");
    if (!body || !body.tokens || (e.key !== "ArrowRight" && e.key !== "ArrowLeft")) return;
    const spans = body.querySelectorAll(".tok");
    if (!spans.length) return;
    const cur = body.querySelector(".tok.sel");
    let i = cur ? Array.prototype.indexOf.call(spans, cur) : -1;
    i = e.key === "ArrowRight" ? Math.min(spans.length - 1, i + 1) : Math.max(0, i - 1);
    inspect(spans[i]);
    e.preventDefault();
  });
}

// ---------------------------------------------------------------- latency panel

let drawPending = false;
function scheduleDraw(run) {
  state.drawRun = run;
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    const r = state.drawRun;
    showRun(r);
    drawTimeline($("timeline"), r ? r.gaps : []);
    drawHistogram($("histogram"), state.bins);
    const g = state.sessionGaps;
    if (g.length) {
      const s = [...g].sort((a, b) => a - b);
      const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
      $("hist-summary").textContent = `${g.length} gaps, p50 ${fmtMs(q(0.5))}, p95 ${fmtMs(q(0.95))}, max ${fmtMs(s[s.length - 1])}`;
    }
  });
}

function showRun(r) {
  if (!r) return;
  setStat("lat-headers", fmtMs(r.headers - r.t0), r.headers ? r.headers - r.t0 : undefined);
  setStat("lat-net", fmtMs(r.netTtfb), r.netTtfb);
  setStat("lat-ttfb", fmtMs(r.firstByte - r.t0), r.firstByte ? r.firstByte - r.t0 : undefined);
  setStat("lat-ttft", fmtMs(r.firstToken - r.t0), r.firstToken ? r.firstToken - r.t0 : undefined);
  setStat("lat-tokens", String(r.times.length));
  const n = r.times.length;
  const span = n > 1 ? r.times[n - 1] - r.times[0] : 0;
  setStat("lat-tps", span > 0 ? `${(((n - 1) * 1000) / span).toFixed(1)}` : "–", span > 0 ? ((n - 1) * 1000) / span : undefined);
  setStat("lat-gap", n > 1 ? fmtMs(span / (n - 1)) : "–", n > 1 ? span / (n - 1) : undefined);
}

// The Resource Timing entry of the request just streamed: requestStart -> responseStart is the
// time the server and the wire took to the first response byte, without the browser's own
// dispatch between this page and its network process. The entry appears once the body has ended,
// so it is looked for over a few ticks.
async function networkTtfb(url, t0) {
  const name = new URL(url, location.href).href;
  for (let i = 0; i < 20; i++) {
    const e = performance.getEntriesByName(name, "resource").filter((x) => x.startTime >= t0 - 1).pop();
    if (e && e.responseStart > 0 && e.requestStart > 0) return e.responseStart - e.requestStart;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}
// Resource Timing keeps 250 entries by default; /metrics polling would fill that in minutes.
performance.addEventListener("resourcetimingbufferfull", () => performance.clearResourceTimings());

// ---------------------------------------------------------------- one request

async function send(text) {
  const system = $("system").value;
  const api = $("api").value;
  let req, p;
  try {
    p = params();
    req = buildRequest(api, p, { system, turns: [...state.turns, { user: text }], key: key(), info: state.info, eula: $("eula").checked, base: BASE });
  } catch (e) {
    setStatus(e.message, "error");
    return;
  }
  addMessage("user", text);
  const msg = addMessage("assistant");
  const body = msg.querySelector(".body");
  body.tokens = [];
  body.tabIndex = 0;
  body.setAttribute("aria-label", "Answer; arrow keys select tokens");
  msg.dataset.state = "streaming";
  msg.dataset.api = api;

  const controller = new AbortController();
  state.busy = { controller };
  $("send").disabled = true;
  $("stop").disabled = false;
  setStatus(`streaming from ${req.url} …`);

  const run = { t0: 0, headers: 0, firstByte: 0, firstToken: 0, times: [], gaps: [] };
  let answer = "";
  let finish = "";
  let error = "";
  const bodyText = JSON.stringify(req.body);
  const utf8 = new TextDecoder();

  const take = (events, now) => {
    let frag = null;
    for (const ev of events) {
      if (ev.kind === "token") {
        if (!run.firstToken) run.firstToken = now;
        if (run.times.length) {
          const gap = now - run.times[run.times.length - 1];
          run.gaps.push(gap);
          state.sessionGaps.push(gap);
          state.bins[binOf(gap)]++;
        }
        run.times.push(now);
        const i = body.tokens.length;
        body.tokens.push(ev);
        if (ev.special) continue; // </s> and the like: timed and counted, not shown
        answer += ev.text;
        const s = document.createElement("span");
        s.className = "tok";
        s.dataset.i = String(i);
        s.textContent = ev.text;
        (frag ||= document.createDocumentFragment()).append(s);
      } else if (ev.kind === "done") {
        finish = ev.finish || "done";
      } else if (ev.kind === "error") {
        error = ev.message;
      }
    }
    if (frag) body.append(frag);
  };

  try {
    run.t0 = performance.now();
    const resp = await fetch(req.url, { method: "POST", headers: req.headers, body: bodyText, signal: controller.signal, cache: "no-store" });
    run.headers = performance.now();
    if (!resp.ok) {
      error = errorMessage(resp.status, await resp.text());
    } else {
      const reader = resp.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        const now = performance.now();
        if (done) break;
        if (!run.firstByte) run.firstByte = now;
        take(req.parser.bytes ? req.parser.bytes(value) : req.parser.text(utf8.decode(value, { stream: true })), now);
        scheduleDraw(run);
      }
      take(req.parser.end(), performance.now());
      run.netTtfb = await networkTtfb(req.url, run.t0);
    }
  } catch (e) {
    if (e.name === "AbortError") finish = "stopped";
    else error = e.message || String(e);
  }
  showRun(run); // the final figures at once, whether or not frames are being drawn
  scheduleDraw(run);
  state.busy = null;
  $("send").disabled = false;
  $("stop").disabled = true;
  if (error) {
    msg.dataset.state = "error";
    const note = document.createElement("div");
    note.className = "error";
    note.textContent = error;
    msg.append(note);
    setStatus(error, "error");
  } else {
    msg.dataset.state = finish === "stopped" ? "stopped" : "done";
    msg.dataset.finish = finish;
    setStatus(finish === "stopped" ? "stopped: the request was cancelled" : `done (${finish || "end of stream"}), ${run.times.length} tokens`);
  }
  // The exchange joins the history unless it failed before any text.
  if (!error || answer) state.turns.push({ user: text, answer });
}

function stop() {
  if (state.busy) state.busy.controller.abort();
}

// ---------------------------------------------------------------- server: /info and /metrics

async function loadInfo() {
  try {
    const r = await fetch(BASE + "/info", { headers: authHeaders(), cache: "no-store" });
    const text = await r.text();
    if (!r.ok) {
      $("model").textContent = r.status === 401 ? "this server needs an API key (enter it under Request)" : errorMessage(r.status, text);
      state.info = null;
      return false;
    }
    const info = JSON.parse(text);
    state.info = info;
    try {
      const m = await fetch(BASE + "/v1/models", { headers: authHeaders(), cache: "no-store" });
      if (m.ok) info.model_name = (await m.json()).data[0].id;
    } catch (e) {
      // the name is optional
    }
    const name = String(info.model_id).split("/").pop();
    $("model").textContent = `${name} · ${info.model_dtype} · max ${info.max_total_tokens} tokens · endpoint ${info.endpoint_name}`;
    $("eula-row").hidden = !info.require_eula;
    return true;
  } catch (e) {
    $("model").textContent = `cannot reach the server: ${e.message}`;
    return false;
  }
}

function showServer(f) {
  const v = (x, digits = 0) => (x === undefined ? "–" : x.toFixed(digits));
  $("srv-queue").textContent = v(f.queue);
  $("srv-running").textContent = v(f.running);
  $("srv-inflight").textContent = v(f.inflight);
  $("srv-kv").textContent = f.kv === undefined ? "–" : `${(f.kv * 100).toFixed(1)} % (${f.kvUsed}/${f.kvTotal} blocks)`;
  $("srv-tps").textContent = f.tps === undefined ? "–" : f.tps.toFixed(1);
  $("srv-prefix-row").hidden = f.prefix === undefined;
  if (f.prefix !== undefined) $("srv-prefix").textContent = `${(f.prefix * 100).toFixed(1)} %`;
}

async function poll() {
  clearTimeout(state.pollTimer);
  let next = POLL_MS;
  try {
    const r = await fetch(BASE + "/metrics", { headers: authHeaders(), cache: "no-store" });
    const text = await r.text();
    if (r.ok) {
      const t = performance.now();
      const m = parsePrometheus(text);
      showServer(serverFigures(m, t, state.metricsPrev));
      state.metricsPrev = { m, t };
      $("srv-age").textContent = `(/metrics, ${new Date().toLocaleTimeString()})`;
    } else {
      $("srv-age").textContent = `(/metrics: ${errorMessage(r.status, text)})`;
      next = 5 * POLL_MS;
    }
  } catch (e) {
    $("srv-age").textContent = `(/metrics unreachable: ${e.message})`;
    next = 5 * POLL_MS;
  }
  state.pollTimer = setTimeout(poll, next);
}

async function connect() {
  clearTimeout(state.pollTimer);
  // Without the key the API routes answer 401; wait for it rather than poll in vain.
  if (await loadInfo()) poll();
}

// ---------------------------------------------------------------- wiring

function init() {
  $("apikey").value = sessionStorage.getItem(KEY_STORE) || "";
  $("apikey").addEventListener("change", () => {
    if (key()) sessionStorage.setItem(KEY_STORE, key());
    else sessionStorage.removeItem(KEY_STORE);
    connect();
  });
  $("ask").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("prompt").value;
    if (!text.trim() || state.busy) return;
    $("prompt").value = "";
    send(text);
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      $("ask").requestSubmit();
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") stop();
  });
  $("stop").addEventListener("click", stop);
  $("clear").addEventListener("click", () => {
    stop();
    state.turns = [];
    $("history").replaceChildren();
    setStatus("new chat");
  });
  wireInspector();
  drawTimeline($("timeline"), []);
  drawHistogram($("histogram"), state.bins);
  connect();
}

init();
