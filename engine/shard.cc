// Tensor-parallel slicing (see shard.h): the partition rules and the sliced Model.
#include "engine/shard.h"

#include "model/mmap.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <numeric>
#include <stdexcept>

namespace lmstream {
namespace {

// Columns a split of t may start at: whole quantization blocks, and whole 32-element activation
// blocks for the integer kernels.
int64_t column_align(const Tensor& t) {
  const int64_t b = dtype_block_elems(t.type);
  return dtype_is_quantized(t.type) ? std::lcm<int64_t>(b, 32) : 1;
}

Tensor rows_view(const Tensor& t, int64_t r0, int64_t n) {
  Tensor s = t;
  s.rows = n;
  s.data = t.data + size_t(r0) * t.row_bytes();
  return s;
}

// Drops the file pages of [p, p + n) when they lie in one of m's read-only mappings: a column
// slice reads every row of the whole tensor, and without this the other ranks' columns would stay
// resident here. (They fault back in from the file if anything reads them again.)
void release_file_pages(const Model& m, const uint8_t* p, size_t n) {
  for (const auto& f : m.maps) {
    if (p < f->data() || p + n > f->data() + f->size()) continue;
    const uintptr_t page = 4096;
    const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
    const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + n) & ~(page - 1);
    if (b > a) madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
    return;
  }
}

Tensor cols_copy(const Tensor& t, int64_t c0, int64_t n, Model& into, const Model& from) {
  if (c0 % column_align(t) != 0 || n % column_align(t) != 0)
    throw std::invalid_argument("tensor " + t.name + ": columns " + std::to_string(c0) + "-" +
                                std::to_string(c0 + n - 1) + " would cut a " + dtype_name(t.type) +
                                " block");
  Tensor s = t;
  s.cols = n;
  const size_t off = dtype_row_bytes(t.type, c0), rb = dtype_row_bytes(t.type, n);
  into.pack_sources.push_back(
      {std::make_unique<uint8_t[]>(rb * size_t(t.rows) + 1), rb * size_t(t.rows)});
  uint8_t* dst = into.pack_sources.back().data.get();
  for (int64_t r = 0; r < t.rows; ++r) std::memcpy(dst + size_t(r) * rb, t.row(r) + off, rb);
  release_file_pages(from, t.data, t.nbytes());
  s.data = dst;
  return s;
}

}  // namespace

std::string ShardPlan::describe(const LlamaConfig& c) const {
  auto range = [](int64_t a, int64_t n) {
    return std::to_string(a) + "-" + std::to_string(a + n - 1);
  };
  return "rank " + std::to_string(rank) + "/" + std::to_string(size) + ": heads " +
         range(head0, heads) + " of " + std::to_string(c.n_heads) + ", KV heads " +
         range(kv0, kv_heads) + " of " + std::to_string(c.n_kv_heads) +
         (kv_replicas > 1 ? " (replicated x" + std::to_string(kv_replicas) + ")" : "") + ", FFN " +
         range(ffn0, ffn) + " of " + std::to_string(c.ffn_dim) + ", vocab " +
         range(vocab0(), vocab()) + " of " + std::to_string(vocab_begin.back());
}

ShardPlan plan_shard(const Model& m, int rank, int size) {
  const LlamaConfig& c = m.cfg;
  if (size < 1 || rank < 0 || rank >= size)
    throw std::invalid_argument("bad tensor-parallel rank " + std::to_string(rank) + " of " +
                                std::to_string(size));
  ShardPlan p;
  p.rank = rank;
  p.size = size;
  if (c.n_heads % size != 0)
    throw std::invalid_argument("tensor parallelism " + std::to_string(size) + ": the model's " +
                                std::to_string(c.n_heads) +
                                " attention heads do not split evenly (whole heads per rank)");
  p.heads = c.n_heads / size;
  p.head0 = rank * p.heads;
  if (c.n_kv_heads >= size) {
    if (c.n_kv_heads % size != 0)
      throw std::invalid_argument("tensor parallelism " + std::to_string(size) + ": the model's " +
                                  std::to_string(c.n_kv_heads) +
                                  " KV heads do not split evenly (whole heads per rank)");
    p.kv_heads = c.n_kv_heads / size;
    p.kv0 = rank * p.kv_heads;
  } else {
    if (size % c.n_kv_heads != 0)
      throw std::invalid_argument("tensor parallelism " + std::to_string(size) + ": " +
                                  std::to_string(c.n_kv_heads) +
                                  " KV heads cannot be replicated evenly over the ranks");
    p.kv_replicas = size / c.n_kv_heads;
    p.kv_heads = 1;
    p.kv0 = rank / p.kv_replicas;
  }
  // The query heads of a rank must belong to its KV heads' groups.
  const int group = c.n_heads / c.n_kv_heads;
  if (p.head0 / group < p.kv0 || (p.head0 + p.heads - 1) / group >= p.kv0 + p.kv_heads)
    throw std::invalid_argument("tensor parallelism " + std::to_string(size) +
                                ": a rank's query heads would span KV groups it does not hold");

  // FFN: whole blocks of down's columns, spread as evenly as blocks allow.
  const int64_t fa = m.layers.empty() ? 1 : column_align(m.layers[0].w_down);
  if (c.ffn_dim % fa != 0)
    throw std::invalid_argument("FFN width " + std::to_string(c.ffn_dim) +
                                " is not a whole number of blocks");
  const int64_t units = c.ffn_dim / fa;
  if (units < size)
    throw std::invalid_argument("tensor parallelism " + std::to_string(size) +
                                ": the FFN has only " + std::to_string(units) + " blocks of " +
                                std::to_string(fa));
  const int64_t base = units / size, extra = units % size;
  p.ffn0 = (rank * base + std::min<int64_t>(rank, extra)) * fa;
  p.ffn = (base + (rank < extra ? 1 : 0)) * fa;

  // o_proj's columns are the rank's heads: they must not cut a block either.
  const int64_t hd = c.head_dim;
  for (const LayerWeights& lw : m.layers) {
    const int64_t a = column_align(lw.wo);
    if ((p.head0 * hd) % a != 0 || (p.heads * hd) % a != 0)
      throw std::invalid_argument(
          "tensor parallelism " + std::to_string(size) + ": each rank's " +
          std::to_string(p.heads * hd) + " o_proj columns would cut " + dtype_name(lw.wo.type) +
          " blocks of " + std::to_string(a) +
          "; use a smaller degree or a float model (--quantize after splitting is not supported)");
  }

  // Vocabulary rows of the output matrix, in multiples of 16 (the packed row groups).
  const int64_t V = m.output.rows;
  const int64_t vg = (V + 15) / 16;
  p.vocab_begin.resize(size_t(size) + 1);
  for (int r = 0; r <= size; ++r) p.vocab_begin[size_t(r)] = std::min(V, (vg * r / size) * 16);
  p.vocab_begin[size_t(size)] = V;
  return p;
}

std::unique_ptr<Model> shard_model(std::unique_ptr<Model> full, const ShardPlan& p) {
  auto s = std::make_unique<Model>();
  const LlamaConfig& c = full->cfg;
  s->path = full->path;
  s->name = full->name;
  s->format = full->format;
  s->cfg = c;
  s->cfg.n_heads = p.heads;
  s->cfg.n_kv_heads = p.kv_heads;
  s->cfg.ffn_dim = int(p.ffn);
  s->tokenizer = full->tokenizer;
  s->generation = full->generation;
  s->tok_embd = full->tok_embd;
  s->out_norm = full->out_norm;
  const int64_t hd = c.head_dim;
  for (const LayerWeights& lw : full->layers) {
    LayerWeights o;
    o.attn_norm = lw.attn_norm;
    o.ffn_norm = lw.ffn_norm;
    o.wq = rows_view(lw.wq, p.head0 * hd, p.heads * hd);
    o.wk = rows_view(lw.wk, p.kv0 * hd, p.kv_heads * hd);
    o.wv = rows_view(lw.wv, p.kv0 * hd, p.kv_heads * hd);
    o.wo = cols_copy(lw.wo, p.head0 * hd, p.heads * hd, *s, *full);
    o.w_gate = rows_view(lw.w_gate, p.ffn0, p.ffn);
    o.w_up = rows_view(lw.w_up, p.ffn0, p.ffn);
    o.w_down = cols_copy(lw.w_down, p.ffn0, p.ffn, *s, *full);
    s->layers.push_back(o);
  }
  s->output = rows_view(full->output, p.vocab0(), p.vocab());
  for (auto& m : full->maps) s->maps.push_back(m);
  for (auto& o : full->owned) s->owned.push_back(std::move(o));
  for (auto& o : full->pack_sources) s->pack_sources.push_back(std::move(o));
  return s;
}

}  // namespace lmstream
