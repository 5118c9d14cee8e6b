// Step-plan encoding (see lockstep.h). Layout, little-endian as the host: u32 magic, u32 kind,
// u64 step, u32 n_seqs; per sequence i32 pos, u32 n_tokens, u32 n_blocks, u32 flags; then all
// tokens, then all block tables, sequence by sequence.
#include "engine/lockstep.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace lmstream {
namespace {
constexpr uint32_t kMagic = 0x4c4d5350;  // "LMSP"
constexpr uint32_t kWantLogits = 1, kAllLogits = 2;

template <class T>
void put(std::vector<uint8_t>& b, T v) {
  const size_t n = b.size();
  b.resize(n + sizeof(T));
  std::memcpy(b.data() + n, &v, sizeof(T));
}

struct Reader {
  std::span<const uint8_t> b;
  size_t at = 0;
  template <class T>
  T get() {
    if (b.size() - at < sizeof(T)) throw std::invalid_argument("step plan truncated");
    T v;
    std::memcpy(&v, b.data() + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
};
}  // namespace

std::vector<uint8_t> encode_plan(PlanKind kind, uint64_t step, std::span<const SeqStep> batch) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, kMagic);
  put<uint32_t>(b, uint32_t(kind));
  put<uint64_t>(b, step);
  put<uint32_t>(b, uint32_t(batch.size()));
  for (const SeqStep& s : batch) {
    put<int32_t>(b, s.pos);
    put<uint32_t>(b, uint32_t(s.tokens.size()));
    put<uint32_t>(b, uint32_t(s.block_table.size()));
    put<uint32_t>(b, (s.want_logits ? kWantLogits : 0) | (s.all_logits ? kAllLogits : 0));
  }
  for (const SeqStep& s : batch)
    for (int32_t t : s.tokens) put<int32_t>(b, t);
  for (const SeqStep& s : batch)
    for (int32_t t : s.block_table) put<int32_t>(b, t);
  return b;
}

DecodedPlan decode_plan(std::span<const uint8_t> bytes) {
  Reader r{bytes};
  if (r.get<uint32_t>() != kMagic) throw std::invalid_argument("step plan: bad magic");
  DecodedPlan p;
  const uint32_t kind = r.get<uint32_t>();
  if (kind < 1 || kind > 3)
    throw std::invalid_argument("step plan: bad kind " + std::to_string(kind));
  p.kind = PlanKind(kind);
  p.step = r.get<uint64_t>();
  const uint32_t n = r.get<uint32_t>();
  if (size_t(n) * 16 > bytes.size()) throw std::invalid_argument("step plan truncated");
  struct Head {
    int32_t pos;
    uint32_t nt, nb, flags;
  };
  std::vector<Head> heads(n);
  uint64_t total = 0;
  for (Head& h : heads) {
    h.pos = r.get<int32_t>();
    h.nt = r.get<uint32_t>();
    h.nb = r.get<uint32_t>();
    h.flags = r.get<uint32_t>();
    total += uint64_t(h.nt) + h.nb;
  }
  if (total * 4 != bytes.size() - r.at) throw std::invalid_argument("step plan: wrong length");
  p.ints.resize(size_t(total));
  if (total) std::memcpy(p.ints.data(), bytes.data() + r.at, size_t(total) * 4);
  size_t tok = 0, blk = 0;
  for (const Head& h : heads) blk += h.nt;
  for (const Head& h : heads) {
    SeqStep s;
    s.pos = h.pos;
    s.tokens = std::span<const int32_t>(p.ints.data() + tok, h.nt);
    s.block_table = std::span<const int32_t>(p.ints.data() + blk, h.nb);
    s.want_logits = h.flags & kWantLogits;
    s.all_logits = h.flags & kAllLogits;
    tok += h.nt;
    blk += h.nb;
    p.batch.push_back(s);
  }
  return p;
}

}  // namespace lmstream
