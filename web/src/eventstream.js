// Decoder of application/vnd.amazon.eventstream (the SageMaker runtime's response stream,
// api.md §3.3): prelude (total length, headers length, prelude CRC32), typed headers, payload,
// message CRC32. Takes bytes in any chunking; returns whole messages. Pure: no DOM, no I/O.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

// IEEE CRC-32 (zlib's) of bytes[start, end).
export function crc32(bytes, start = 0, end = bytes.length) {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const MAX_HEADERS = 128 * 1024;
const MAX_PAYLOAD = 24 * 1024 * 1024;
const utf8 = new TextDecoder("utf-8", { fatal: false });

function parseHeaders(b, start, end) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = {};
  let p = start;
  const need = (n) => {
    if (p + n > end) throw new Error("event stream: header runs past the headers section");
  };
  while (p < end) {
    need(1);
    const nameLen = b[p++];
    need(nameLen + 1);
    const name = utf8.decode(b.subarray(p, p + nameLen));
    p += nameLen;
    const type = b[p++];
    let value;
    switch (type) {
      case 0: value = true; break;
      case 1: value = false; break;
      case 2: need(1); value = dv.getInt8(p); p += 1; break;
      case 3: need(2); value = dv.getInt16(p); p += 2; break;
      case 4: need(4); value = dv.getInt32(p); p += 4; break;
      case 5: need(8); value = dv.getBigInt64(p); p += 8; break;
      case 6:
      case 7: {
        need(2);
        const len = dv.getUint16(p);
        p += 2;
        need(len);
        const raw = b.slice(p, p + len);
        value = type === 7 ? utf8.decode(raw) : raw;
        p += len;
        break;
      }
      case 8: need(8); value = new Date(Number(dv.getBigInt64(p))); p += 8; break;
      case 9: need(16); value = b.slice(p, p + 16); p += 16; break;
      default: throw new Error(`event stream: unknown header value type ${type}`);
    }
    if (Object.prototype.hasOwnProperty.call(out, name)) throw new Error(`event stream: duplicate header ${name}`);
    out[name] = value;
  }
  return out;
}

export class EventStreamDecoder {
  constructor() {
    this.buf = new Uint8Array(0);
  }

  // Appends bytes; returns the messages now complete, [{headers, payload}], in order. Throws on
  // a CRC mismatch or a malformed message (the stream cannot be resynchronised after that).
  push(chunk) {
    if (chunk && chunk.length) {
      const b = new Uint8Array(this.buf.length + chunk.length);
      b.set(this.buf, 0);
      b.set(chunk, this.buf.length);
      this.buf = b;
    }
    const out = [];
    while (this.buf.length >= 12) {
      const b = this.buf;
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const total = dv.getUint32(0);
      const hlen = dv.getUint32(4);
      if (crc32(b, 0, 8) !== dv.getUint32(8)) throw new Error("event stream: prelude CRC mismatch");
      if (hlen > MAX_HEADERS) throw new Error("event stream: headers too long");
      if (total < 16 + hlen || total - 16 - hlen > MAX_PAYLOAD) throw new Error("event stream: bad message length");
      if (b.length < total) break;
      if (crc32(b, 0, total - 4) !== dv.getUint32(total - 4)) throw new Error("event stream: message CRC mismatch");
      const headers = parseHeaders(b, 12, 12 + hlen);
      out.push({ headers, payload: b.slice(12 + hlen, total - 4) });
      this.buf = b.slice(total);
    }
    return out;
  }

  // Bytes left over (a partial message) once the body ended.
  pending() {
    return this.buf.length;
  }
}
