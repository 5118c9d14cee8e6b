// The three ways the page asks for a streamed answer, each as a request builder and an event
// parser yielding the same events: {kind:"token", text, id, logprob, special},
// {kind:"done", finish}, {kind:"error", message}. TGI /generate_stream and the SageMaker runtime
// route take a Llama 2 chat prompt built here (the notebooks' format; the server adds BOS);
// OpenAI /v1/chat/completions takes the messages and applies the model's chat template itself.
// Pure: no DOM, no fetch.
import { EventStreamDecoder } from "./eventstream.js";
import { JsonLinesDecoder, SseDecoder } from "./sse.js";

// Meta's chat_completion format: the system prompt joins the first user turn; each exchange is
// "[INST] user [/INST] answer </s>", exchanges joined by "<s>" (the first BOS is the server's).
export function llama2Prompt(system, turns) {
  return turns
    .map((t, i) => {
      const user = i === 0 && system.trim() ? `<<SYS>>\n${system}\n<</SYS>>\n\n${t.user}` : t.user;
      let s = `[INST] ${user.trim()} [/INST]`;
      if (t.answer !== undefined) s += ` ${t.answer.trim()} </s>`;
      return s;
    })
    .join("<s>");
}

export function chatMessages(system, turns) {
  const m = [];
  if (system.trim()) m.push({ role: "system", content: system });
  for (const t of turns) {
    m.push({ role: "user", content: t.user });
    if (t.answer !== undefined) m.push({ role: "assistant", content: t.answer });
  }
  return m;
}

function tgiParameters(p) {
  const o = { max_new_tokens: p.max_new_tokens, details: true };
  for (const k of ["temperature", "top_p", "top_k", "repetition_penalty", "seed"]) if (p[k] !== undefined) o[k] = p[k];
  if (p.stop.length) o.stop = p.stop;
  return o;
}

// The message of an error body in any of the shapes the routes answer with.
export function errorMessage(status, text) {
  try {
    const j = JSON.parse(text);
    const m = typeof j.error === "string" ? j.error : (j.error && j.error.message) || j.message || j.Message;
    if (m) return `${status}: ${m}`;
  } catch (e) {
    // not JSON: the text itself
  }
  return `${status}: ${text.slice(0, 300) || "no body"}`;
}

// TGI stream event (also inside SageMaker PayloadParts).
function tgiEvent(data, out) {
  let j;
  try {
    j = JSON.parse(data);
  } catch (e) {
    out.push({ kind: "error", message: `unparsable event: ${data.slice(0, 200)}` });
    return;
  }
  if (j.error !== undefined) {
    out.push({ kind: "error", message: `${j.error_type || "error"}: ${j.error}` });
    return;
  }
  if (j.token) {
    const t = j.token;
    out.push({ kind: "token", text: t.text ?? "", id: t.id, logprob: t.logprob, special: !!t.special });
  }
  if (j.generated_text !== null && j.generated_text !== undefined)
    out.push({ kind: "done", finish: (j.details && j.details.finish_reason) || "" });
}

// LMI jsonlines output ({"outputs": [text]} per token, {"code", "error"} on failure).
function lmiEvent(line, out) {
  let j;
  try {
    j = JSON.parse(line);
  } catch (e) {
    out.push({ kind: "error", message: `unparsable line: ${line.slice(0, 200)}` });
    return;
  }
  if (j.error !== undefined) out.push({ kind: "error", message: String(j.error) });
  else if (Array.isArray(j.outputs)) for (const s of j.outputs) out.push({ kind: "token", text: String(s) });
}

class TgiParser {
  constructor() {
    this.sse = new SseDecoder();
  }
  text(s) {
    const out = [];
    for (const d of this.sse.push(s)) tgiEvent(d, out);
    return out;
  }
  end() {
    const out = [];
    for (const d of this.sse.flush()) tgiEvent(d, out);
    return out;
  }
}

class OpenAiParser {
  constructor() {
    this.sse = new SseDecoder();
  }
  one(d, out) {
    if (d === "[DONE]") {
      out.push({ kind: "done", finish: this.finish || "" });
      return;
    }
    let j;
    try {
      j = JSON.parse(d);
    } catch (e) {
      out.push({ kind: "error", message: `unparsable event: ${d.slice(0, 200)}` });
      return;
    }
    if (j.error) {
      out.push({ kind: "error", message: typeof j.error === "string" ? j.error : j.error.message || JSON.stringify(j.error) });
      return;
    }
    const c = j.choices && j.choices[0];
    if (!c) return;
    const piece = c.delta && c.delta.content;
    if (typeof piece === "string" && piece !== "") {
      const lp = c.logprobs && Array.isArray(c.logprobs.content) && c.logprobs.content[0];
      out.push({ kind: "token", text: piece, logprob: lp ? lp.logprob : undefined });
    }
    if (c.finish_reason) this.finish = c.finish_reason;
  }
  text(s) {
    const out = [];
    for (const d of this.sse.push(s)) this.one(d, out);
    return out;
  }
  end() {
    const out = [];
    for (const d of this.sse.flush()) this.one(d, out);
    return out;
  }
}

// Event-stream messages around the container's bytes: TGI SSE, or LMI JSON lines.
class SageMakerParser {
  constructor(mode) {
    this.es = new EventStreamDecoder();
    this.utf8 = new TextDecoder();
    this.inner = mode === "lmi" ? new JsonLinesDecoder() : new SseDecoder();
    this.mode = mode;
  }
  innerEvents(items, out) {
    for (const d of items) (this.mode === "lmi" ? lmiEvent : tgiEvent)(d, out);
  }
  bytes(b) {
    const out = [];
    for (const m of this.es.push(b)) {
      const type = m.headers[":message-type"];
      if (type === "event" && m.headers[":event-type"] === "PayloadPart") {
        this.innerEvents(this.inner.push(this.utf8.decode(m.payload, { stream: true })), out);
      } else if (type === "exception" || type === "error") {
        let msg = this.utf8.decode(m.payload);
        try {
          msg = JSON.parse(msg).Message || msg;
        } catch (e) {
          // keep the raw text
        }
        const code = m.headers[":exception-type"] || m.headers[":error-code"] || "error";
        out.push({ kind: "error", message: `${code}: ${msg}` });
      }
      // Other event types are skipped, as botocore does.
    }
    return out;
  }
  end() {
    const out = [];
    if (this.es.pending()) out.push({ kind: "error", message: `event stream ended inside a message (${this.es.pending()} bytes)` });
    this.innerEvents(this.inner.flush(), out);
    if (this.mode === "lmi" && !out.some((e) => e.kind === "error")) out.push({ kind: "done", finish: "" });
    return out;
  }
}

// {url, headers, body, parser} for one request. p: sampling parameters from the form;
// ctx: {system, turns, key, info, eula, base}; base is the page's route prefix ("" on a server,
// "/endpoints/{name}" through the control plane, whose runtime route is then base itself).
export function buildRequest(api, p, ctx) {
  const base = ctx.base || "";
  const headers = { "Content-Type": "application/json" };
  if (ctx.key) headers.Authorization = `Bearer ${ctx.key}`;
  if (api === "openai") {
    const body = { messages: chatMessages(ctx.system, ctx.turns), stream: true, max_tokens: p.max_new_tokens, logprobs: true };
    for (const k of ["temperature", "top_p", "top_k", "repetition_penalty", "seed"]) if (p[k] !== undefined) body[k] = p[k];
    if (p.stop.length) body.stop = p.stop;
    if (ctx.info && ctx.info.model_name) body.model = ctx.info.model_name;
    return { url: `${base}/v1/chat/completions`, headers, body, parser: new OpenAiParser() };
  }
  const inputs = llama2Prompt(ctx.system, ctx.turns);
  if (api === "sagemaker") {
    const name = ctx.info && ctx.info.endpoint_name;
    const url = base ? `${base}/invocations-response-stream` : `/endpoints/${encodeURIComponent(name)}/invocations-response-stream`;
    if (!base && !name) throw new Error("the server's /info names no endpoint (needed for the SageMaker route)");
    headers["X-Amzn-SageMaker-Accept"] = "application/json";
    if (ctx.eula) headers["X-Amzn-SageMaker-Custom-Attributes"] = "accept_eula=true";
    const body = { inputs, parameters: tgiParameters(p), stream: true };
    const parser = new SageMakerParser(ctx.info.api === "lmi" ? "lmi" : "tgi");
    return { url, headers, body, parser };
  }
  return { url: `${base}/generate_stream`, headers, body: { inputs, parameters: tgiParameters(p) }, parser: new TgiParser() };
}
