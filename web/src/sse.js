// Incremental text decoders for the two line-based stream formats the page reads: Server-Sent
// Events (TGI: `data:{json}`, OpenAI: `data: {json}` ending with `data: [DONE]`; `:` comments are
// keep-alives) and JSON lines (LMI). Take text in any chunking. Pure: no DOM, no I/O.

export class SseDecoder {
  constructor() {
    this.buf = "";
    this.data = [];
  }

  // Appends text; returns the data of each complete event, in order.
  push(text) {
    this.buf += text;
    const out = [];
    let nl;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      let line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (this.data.length) out.push(this.data.join("\n"));
        this.data = [];
      } else if (line.startsWith(":")) {
        // comment (keep-alive)
      } else {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") this.data.push(value);
      }
    }
    return out;
  }

  // An event the body ended inside (no blank line after it), if any.
  flush() {
    const rest = this.push("\n\n");
    this.buf = "";
    return rest;
  }
}

export class JsonLinesDecoder {
  constructor() {
    this.buf = "";
  }

  push(text) {
    this.buf += text;
    const out = [];
    let nl;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line) out.push(line);
    }
    return out;
  }

  flush() {
    const line = this.buf.trim();
    this.buf = "";
    return line ? [line] : [];
  }
}
