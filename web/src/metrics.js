// Reads the server's Prometheus text (/metrics) into the figures of the server panel: queue,
// running batch, KV-cache use, in-flight requests, generated tokens/s (from the growth of
// tgi_request_generated_tokens_sum, counted as requests complete) and the prefix-cache hit ratio
// when the server exports one. Pure: no DOM, no fetch.

// name -> value, for unlabelled samples and for labelled ones as `name{labels}` too.
export function parsePrometheus(text) {
  const m = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    if (sp < 0) continue;
    const key = line.slice(0, sp).trim();
    const v = Number(line.slice(sp + 1));
    if (!Number.isFinite(v)) continue;
    m.set(key, v);
  }
  return m;
}

function sumMatching(m, re) {
  let s = 0, any = false;
  for (const [k, v] of m) if (re.test(k)) { s += v; any = true; }
  return any ? s : undefined;
}

// prev: the previous {m, t} sample (or null); returns the panel's figures.
export function serverFigures(m, t, prev) {
  const used = m.get("lmstream_kv_blocks_used"), free = m.get("lmstream_kv_blocks_free");
  const f = {
    queue: m.get("tgi_queue_size"),
    running: m.get("tgi_batch_current_size"),
    inflight: m.get("lmstream_requests_in_flight"),
    kv: used !== undefined && free !== undefined && used + free > 0 ? used / (used + free) : undefined,
    kvUsed: used,
    kvTotal: used !== undefined && free !== undefined ? used + free : undefined,
    tps: undefined,
    prefix: undefined,
  };
  const gen = m.get("tgi_request_generated_tokens_sum");
  if (prev && gen !== undefined && prev.m.get("tgi_request_generated_tokens_sum") !== undefined && t > prev.t)
    f.tps = Math.max(0, gen - prev.m.get("tgi_request_generated_tokens_sum")) / ((t - prev.t) / 1000);
  // Prefix caching: a ratio gauge if exported, else hits over hits + misses (or over lookups).
  const ratio = sumMatching(m, /^[a-z_]*prefix[a-z_]*hit[a-z_]*ratio[a-z_]*(\{.*\})?$/);
  const hits = sumMatching(m, /^[a-z_]*prefix[a-z_]*hits?(_total)?(\{.*\})?$/);
  const misses = sumMatching(m, /^[a-z_]*prefix[a-z_]*miss(es)?(_total)?(\{.*\})?$/);
  const lookups = sumMatching(m, /^[a-z_]*prefix[a-z_]*(lookups|queries|requests)(_total)?(\{.*\})?$/);
  if (ratio !== undefined) f.prefix = ratio;
  else if (hits !== undefined && misses !== undefined && hits + misses > 0) f.prefix = hits / (hits + misses);
  else if (hits !== undefined && lookups) f.prefix = hits / lookups;
  return f;
}
