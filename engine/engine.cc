// The Llama forward pass over a ragged batch (see engine.h). Reads top to bottom like the model:
// embed -> per layer [RMSNorm, QKV, RoPE, KV write, attention, output proj, residual, RMSNorm,
// gate/up, SwiGLU, down, residual] -> final norm -> logits. Weights are immutable; everything that
// changes per step lives in Scratch and the KV cache.
#include "engine/engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine_tp.h"
#include "engine/kv_cache.h"
#include "engine/lockstep.h"
#include "engine/packed_cache.h"
#include "kernels/huge_arena.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/threadpool.h"
#include "model/mmap.h"

#include <sys/mman.h>

namespace lmstream {
namespace {
constexpr int kMaxRows = 512;  // rows per micro-batch; larger steps run as several
}

struct Engine::Scratch {
  struct Layer {
    Matrix wq, wk, wv, wo, gate, up, down;
  };
  std::vector<Layer> layers;
  Matrix output;
  std::shared_ptr<HugeArena> weights;     // every packed matrix, back to back
  std::shared_ptr<PackedMapping> cached;  // or all of them mapped from the packed-weight cache
  std::string cache_status;
  std::atomic<bool> cancel_write{false};
  std::thread writer;  // writes the cache file after a miss, while the engine serves
  ~Scratch() {
    cancel_write = true;
    if (writer.joinable()) writer.join();
  }
  std::vector<float> rope_cos, rope_sin;  // [max_pos][head_dim/2]
  // Per micro-batch activations, [rows][width].
  std::vector<float> x, xb, q, k, v, att, tmp, g, u, logit_in;
  QuantActs qx;
};

size_t Engine::kv_bytes_per_token(const LlamaConfig& c, KvType t) {
  return 2 * size_t(c.n_layers) * size_t(c.n_kv_heads) * size_t(c.head_dim) *
         (t == KvType::F16 ? 2 : 4);
}

namespace {
// Applies madvise advice to the whole pages of [p, p + n) when the range lies in one of the model's
// read-only file mappings; never to owned memory (where MADV_DONTNEED would zero it).
void advise_file_pages(const Model& m, const uint8_t* p, size_t n, int advice) {
  for (const auto& f : m.maps) {
    if (p < f->data() || p + n > f->data() + f->size()) continue;
    const uintptr_t page = 4096;
    const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
    const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + n) & ~(page - 1);
    if (b > a) madvise(reinterpret_cast<void*>(a), b - a, advice);
    return;
  }
}
}  // namespace

int Engine::kv_blocks(const LlamaConfig& c, KvType t, int block_size, const KvSizing& s) {
  if (block_size <= 0) throw std::invalid_argument("block size must be positive");
  int64_t blocks = s.blocks;
  if (blocks <= 0) {
    int64_t tokens = 0;
    if (s.tokens > 0) {
      tokens = std::max(s.tokens, s.min_tokens);
    } else if (s.memory_bytes > 0) {
      tokens = int64_t(s.memory_bytes / kv_bytes_per_token(c, t));
    } else {
      tokens = std::max(s.default_tokens > 0 ? s.default_tokens : int64_t(c.max_pos), s.min_tokens);
    }
    blocks = (tokens + block_size - 1) / block_size;
  }
  if (blocks <= 0) throw std::invalid_argument("the KV cache budget holds no block");
  if (blocks > (int64_t(1) << 30)) throw std::invalid_argument("the KV cache budget is too large");
  return int(blocks);
}

Engine::Engine(const Model& model, const EngineOptions& opts)
    : model_(model), opts_(opts), s_(std::make_unique<Scratch>()) {
  const LlamaConfig& c = model_.cfg;
  if (model_.pack_sources_freed)
    throw std::invalid_argument(
        "this model's tensor-parallel weight slices were freed by the engine that packed them; "
        "load and shard the model again for another engine");
  if (opts_.block_size <= 0) throw std::invalid_argument("block size must be positive");
  if (opts_.n_blocks <= 0) opts_.n_blocks = (c.max_pos + opts_.block_size - 1) / opts_.block_size;
  if (c.head_dim % 2 != 0) throw std::invalid_argument("head_dim must be even");
  auto check_norm = [](const Tensor& t) {
    if (t.type != DType::F32) throw std::invalid_argument("norm weight " + t.name + " is not F32");
  };
  check_norm(model_.out_norm);
  for (const LayerWeights& lw : model_.layers) {
    check_norm(lw.attn_norm);
    check_norm(lw.ffn_norm);
  }
  pool_ = std::make_unique<ThreadPool>(opts_.threads);
  kv_ = std::make_unique<KvCache>(c, opts_.n_blocks, opts_.block_size, opts_.kv_type);

  // The file mapping is read sparsely once packing is done (embedding rows, norms): map it with
  // small pages, or a lookup brings in a whole 2 MiB page-cache folio and releasing pages below
  // does not shrink what stays mapped.
  for (const auto& f : model_.maps)
    advise_file_pages(model_, f->data(), f->size(), MADV_NOHUGEPAGE);
  // Packed matrices are copies: drop the file pages they came from, so resident memory holds each
  // weight once. (Read-only file pages fault back in if something reads them again.)
  // All packed matrices live in one huge-page arena (64-byte aligned offsets), so rounding to
  // 2 MiB costs at most one page for the whole model.
  auto round64 = [](size_t n) { return (n + 63) / 64 * 64; };
  size_t packed_total = 0;
  auto count = [&](const Tensor& t) { packed_total += round64(Matrix::packed_bytes(t)); };
  for (const LayerWeights& lw : model_.layers)
    for (const Tensor* t : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down})
      count(*t);
  count(model_.output);
  // Offsets first (in file order), then every matrix packed on the engine's threads: packing is
  // most of a warm start's time, and the matrices are independent.
  std::vector<const Tensor*> order;
  for (const LayerWeights& lw : model_.layers)
    for (const Tensor* t : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down})
      order.push_back(t);
  order.push_back(&model_.output);
  std::vector<size_t> offsets(order.size());
  size_t arena_off = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    offsets[i] = arena_off;
    arena_off += round64(Matrix::packed_bytes(*order[i]));
  }
  std::vector<Matrix> prepared(order.size());
  std::unique_ptr<PackedCache> cache;
  if (packed_total == 0 || opts_.packed_cache_dir.empty()) {
    s_->cache_status = "off";
  } else if (packed_total < opts_.packed_cache_min_bytes) {
    s_->cache_status = "not used (packed weights under " +
                       std::to_string(opts_.packed_cache_min_bytes >> 20) + " MiB)";
  } else {
    cache =
        std::make_unique<PackedCache>(opts_.packed_cache_dir, model_, order, offsets, packed_total);
    std::string why;
    if (cache->ok()) s_->cached = cache->open(*pool_, &why);
    if (s_->cached) {
      s_->cache_status = "hit, mapped " + cache->path();
      for (size_t i = 0; i < order.size(); ++i)
        prepared[i] = Matrix::prepare_packed(
            *order[i], Matrix::packed_bytes(*order[i]) > 0
                           ? std::shared_ptr<uint8_t>(s_->cached, s_->cached->data() + offsets[i])
                           : nullptr);
    } else if (!cache->ok()) {
      s_->cache_status = "not used (" + cache->why() + ")";
      cache.reset();
    } else {
      s_->cache_status = "miss (" + cache->path() + ": " + why + "); packed, writing it";
    }
  }
  if (packed_total > 0 && !s_->cached) s_->weights = std::make_shared<HugeArena>(packed_total);
  std::vector<std::exception_ptr> failed(order.size());
  if (!s_->cached)
    pool_->parallel_for(int64_t(order.size()), 1, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        try {
          const Tensor& t = *order[size_t(i)];
#ifdef MADV_POPULATE_READ
          // Fault the source pages in with one call (a warm start reads them from the page cache;
          // one fault per 4 KiB page would cost more than the packing).
          if (Matrix::packed_bytes(t) > 0)
            advise_file_pages(model_, t.data, t.nbytes(), MADV_POPULATE_READ);
#endif
          std::shared_ptr<uint8_t> dst;
          if (Matrix::packed_bytes(t) > 0)
            dst = std::shared_ptr<uint8_t>(s_->weights, s_->weights->data() + offsets[size_t(i)]);
          prepared[size_t(i)] = Matrix::prepare(t, std::move(dst));
          if (prepared[size_t(i)].packed)
            advise_file_pages(model_, t.data, t.nbytes(), MADV_DONTNEED);
        } catch (...) {
          failed[size_t(i)] = std::current_exception();
        }
      }
    });
  for (auto& e : failed)
    if (e) std::rethrow_exception(e);
  if (cache && !s_->cached) {
    // The arena is immutable from here on: write it out while the engine serves.
    s_->writer = std::thread([this, cache = std::move(cache), log = opts_.packed_cache_log] {
      const auto t0 = std::chrono::steady_clock::now();
      const std::string err = cache->write(s_->weights->data(), &s_->cancel_write);
      const double sec =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!log) return;
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.1f MiB in %.2f s", double(s_->weights->size()) / 1048576.0,
                    sec);
      log(err.empty() ? "packed-weight cache: wrote " + cache->path() + " (" + buf + ")"
                      : "packed-weight cache: not written (" + err + ")");
    });
  }
  // Copies made only for packing go once every matrix they back is packed (or mapped from the
  // cache): nothing reads them after this.
  if (!model_.pack_sources.empty()) {
    bool all_packed = true;
    for (size_t i = 0; i < order.size(); ++i)
      for (const auto& src : model_.pack_sources)
        if (order[i]->data >= src.data.get() && order[i]->data < src.data.get() + src.bytes &&
            !prepared[i].packed)
          all_packed = false;
    if (all_packed) {
      model_.pack_sources.clear();
      model_.pack_sources_freed = true;
    }
  }
  size_t next = 0;
  for (size_t l = 0; l < model_.layers.size(); ++l, next += 7) {
    auto take = [&](size_t k) { return std::move(prepared[next + k]); };
    s_->layers.push_back({take(0), take(1), take(2), take(3), take(4), take(5), take(6)});
  }
  s_->output = std::move(prepared[next]);

  const int half = c.head_dim / 2;
  s_->rope_cos.resize(size_t(c.max_pos) * half);
  s_->rope_sin.resize(size_t(c.max_pos) * half);
  for (int p = 0; p < c.max_pos; ++p) {
    for (int i = 0; i < half; ++i) {
      const double inv = std::pow(double(c.rope_theta), -2.0 * i / double(c.head_dim));
      const double ang = double(p) * inv;
      s_->rope_cos[size_t(p) * half + i] = float(std::cos(ang));
      s_->rope_sin[size_t(p) * half + i] = float(std::sin(ang));
    }
  }
  if (opts_.tp_comm && opts_.tp_comm->size() > 1) tp_start();
}

Engine::~Engine() {
  if (tp_) shutdown_workers();
}

int Engine::threads() const { return pool_->size(); }
size_t Engine::kv_bytes() const { return kv_->bytes(); }

std::string describe(const MemoryReport& r) {
  auto mib = [](size_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", double(b) / 1048576.0);
    return std::string(buf);
  };
  std::string s = "weights: ";
  if (r.weight_arena_bytes == 0)
    s += r.weight_reason;
  else
    s += "one arena of " + mib(r.weight_arena_bytes) + ", " + mib(r.weight_huge_bytes) +
         " in huge pages (" + r.weight_reason + ")";
  if (!r.weight_cache.empty()) s += "; packed-weight cache: " + r.weight_cache;
  s += "; KV pool: " + mib(r.kv_bytes) + ", " + mib(r.kv_huge_bytes) + " in huge pages so far (" +
       r.kv_reason + ")";
  return s;
}

MemoryReport Engine::memory_report() const {
  MemoryReport r;
  r.thp_mode = HugeArena::thp_mode();
  r.weight_cache = s_->cache_status;
  if (s_->cached) {
    r.weight_arena_bytes = s_->cached->size();
    r.weight_huge_bytes = HugeArena::huge_bytes_of(s_->cached->data(), s_->cached->size());
    r.weight_reason = "mapped from the packed-weight cache, MADV_HUGEPAGE";
  } else if (s_->weights) {
    r.weight_arena_bytes = s_->weights->size();
    r.weight_huge_bytes = s_->weights->huge_bytes();
    r.weight_reason = s_->weights->reason();
  } else {
    r.weight_reason = "no packed matrices (float weights are read in place from the file)";
  }
  r.kv_bytes = kv_->bytes();
  r.kv_huge_bytes = kv_->arena().huge_bytes();
  r.kv_reason = kv_->arena().reason();
  return r;
}

std::string Engine::cache_identity() const {
  const LlamaConfig& c = model_.cfg;
  std::string id = model_.format + ":" + model_.path + "|" + model_.name;
  for (int v :
       {c.vocab_size, c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn_dim, c.max_pos})
    id += "|" + std::to_string(v);
  id += "|theta=" + std::to_string(c.rope_theta) + "|eps=" + std::to_string(c.rms_eps);
  // The weights' storage types (a --quantize load of the same file computes other K/V).
  for (const LayerWeights& lw : model_.layers)
    for (const Tensor* t : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down})
      id += char('A' + int(t->type));
  id += "|bytes=" + std::to_string(model_.weight_bytes());
  id += std::string("|kv=") + (opts_.kv_type == KvType::F16 ? "f16" : "f32");
  id += "|block=" + std::to_string(opts_.block_size);
  return id;
}

void Engine::step(std::span<const SeqStep> batch, float* logits_out) {
  const std::vector<Row> rows = validate(batch);
  if (!tp_) return compute(batch, rows, logits_out);
  // Rank 0 under tensor parallelism: every rank runs the same plan.
  std::lock_guard<std::mutex> lk(tp_->mu);
  if (tp_->comm->rank() != 0) throw std::logic_error("engine: only rank 0 plans steps");
  if (tp_->shut) throw std::logic_error("engine: the tensor-parallel workers were shut down");
  std::vector<uint8_t> plan = encode_plan(PlanKind::kRun, ++tp_->step, batch);
  tp_->comm->bcast(plan, tp_->timeout_s);
  tp_->last = std::chrono::steady_clock::now();
  compute(batch, rows, logits_out);
}

std::vector<Engine::Row> Engine::validate(std::span<const SeqStep> batch) const {
  const LlamaConfig& c = model_.cfg;
  const int bs = opts_.block_size;
  // Validate everything before touching state.
  std::vector<Row> rows;
  for (size_t i = 0; i < batch.size(); ++i) {
    const SeqStep& st = batch[i];
    const int64_t end = int64_t(st.pos) + int64_t(st.tokens.size());
    if (st.pos < 0 || end > c.max_pos)
      throw std::invalid_argument("position " + std::to_string(end) + " past the model's context " +
                                  std::to_string(c.max_pos));
    const int64_t need = (end + bs - 1) / bs;
    if (int64_t(st.block_table.size()) < need)
      throw std::invalid_argument("block table covers " + std::to_string(st.block_table.size()) +
                                  " blocks, " + std::to_string(need) + " needed");
    for (int64_t b = 0; b < need; ++b)
      if (st.block_table[b] < 0 || st.block_table[b] >= opts_.n_blocks)
        throw std::invalid_argument("block id out of range: " + std::to_string(st.block_table[b]));
    for (size_t j = 0; j < st.tokens.size(); ++j) {
      if (st.tokens[j] < 0 || st.tokens[j] >= c.vocab_size)
        throw std::invalid_argument("token id out of range: " + std::to_string(st.tokens[j]));
      rows.push_back({st.tokens[j], int32_t(st.pos + j), int(i)});
    }
  }
  return rows;
}

void Engine::compute(std::span<const SeqStep> batch, const std::vector<Row>& rows,
                     float* logits_out) {
  const LlamaConfig& c = model_.cfg;
  // Which rows produce logits, in output order.
  std::vector<char> want(rows.size(), 0);
  {
    size_t r = 0;
    for (const SeqStep& st : batch) {
      for (size_t j = 0; j < st.tokens.size(); ++j, ++r)
        want[r] = st.all_logits || (st.want_logits && j + 1 == st.tokens.size());
    }
  }
  size_t out_row = 0;
  for (size_t r0 = 0; r0 < rows.size(); r0 += kMaxRows) {
    const size_t r1 = std::min(rows.size(), r0 + kMaxRows);
    forward_rows(batch, rows.data() + r0, r1 - r0, want.data() + r0,
                 logits_out ? logits_out + out_row * size_t(c.vocab_size) : nullptr);
    for (size_t r = r0; r < r1; ++r) out_row += want[r] ? 1 : 0;
  }
}

void Engine::forward_rows(std::span<const SeqStep> batch, const Row* rows, size_t n,
                          const char* want, float* logits) {
  const LlamaConfig& c = model_.cfg;
  Scratch& s = *s_;
  ThreadPool& pool = *pool_;
  const int M = int(n);
  const int dim = c.dim, hd = c.head_dim, nh = c.n_heads, nkv = c.n_kv_heads;
  const int qdim = nh * hd, kvdim = nkv * hd, ffn = c.ffn_dim;
  const int bs = opts_.block_size;
  const bool interleaved = c.rope_layout == RopeLayout::kInterleaved;
  auto grow = [](std::vector<float>& v, size_t sz) {
    if (v.size() < sz) v.resize(sz);
  };
  grow(s.x, size_t(M) * dim);
  grow(s.xb, size_t(M) * dim);
  grow(s.q, size_t(M) * qdim);
  grow(s.k, size_t(M) * kvdim);
  grow(s.v, size_t(M) * kvdim);
  grow(s.att, size_t(M) * qdim);
  grow(s.tmp, size_t(M) * dim);
  grow(s.g, size_t(M) * ffn);
  grow(s.u, size_t(M) * ffn);
  float* x = s.x.data();
  float* xb = s.xb.data();
  // Element-wise work is spread over threads only when there are enough rows to pay for it.
  const int64_t row_chunk =
      int64_t(M) * dim < (1 << 16) ? M : std::max<int64_t>(1, M / (pool.size() * 4));
  auto rows_parallel = [&](auto&& fn) {
    pool.parallel_for(M, row_chunk, [&](int64_t a, int64_t b) {
      for (int64_t r = a; r < b; ++r) fn(int(r));
    });
  };

  // Token embeddings.
  rows_parallel([&](int r) {
    dequantize_row(model_.tok_embd.type, model_.tok_embd.row(rows[r].token), x + size_t(r) * dim,
                   dim);
  });

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& lw = model_.layers[l];
    const Scratch::Layer& L = s.layers[l];

    // Attention block: RMSNorm, then Q, K, V projections in one dispatch.
    rows_parallel([&](int r) {
      rmsnorm(x + size_t(r) * dim, reinterpret_cast<const float*>(lw.attn_norm.data),
              xb + size_t(r) * dim, dim, c.rms_eps);
    });
    const MatmulJob qkv[3] = {
        {&L.wq, s.q.data(), qdim}, {&L.wk, s.k.data(), kvdim}, {&L.wv, s.v.data(), kvdim}};
    matmul(qkv, xb, M, s.qx, pool);

    // RoPE on q and k at each row's position, then K and V into the cache.
    rows_parallel([&](int r) {
      const int p = rows[r].pos;
      const float* cs = s.rope_cos.data() + size_t(p) * (hd / 2);
      const float* sn = s.rope_sin.data() + size_t(p) * (hd / 2);
      rope(s.q.data() + size_t(r) * qdim, nh, hd, cs, sn, interleaved);
      rope(s.k.data() + size_t(r) * kvdim, nkv, hd, cs, sn, interleaved);
      const SeqStep& st = batch[rows[r].seq];
      const int32_t blk = st.block_table[p / bs];
      const int slot = p % bs;
      const size_t elt = kv_->elt();
      for (int h = 0; h < nkv; ++h) {
        const float* kr = s.k.data() + size_t(r) * kvdim + size_t(h) * hd;
        const float* vr = s.v.data() + size_t(r) * kvdim + size_t(h) * hd;
        // K transposed within the block ([head_dim][block_size]), V row-major.
        uint8_t* kb = kv_->k(l, h) + size_t(blk) * kv_->block_stride();
        uint8_t* vd = kv_->v(l, h) + size_t(blk) * kv_->block_stride() + size_t(slot) * hd * elt;
        if (opts_.kv_type == KvType::F16) {
          auto* k16 = reinterpret_cast<uint16_t*>(kb);
          for (int e = 0; e < hd; ++e) k16[size_t(e) * bs + slot] = fp32_to_fp16(kr[e]);
          f32_to_f16(vr, reinterpret_cast<uint16_t*>(vd), hd);
        } else {
          auto* k32 = reinterpret_cast<float*>(kb);
          for (int e = 0; e < hd; ++e) k32[size_t(e) * bs + slot] = kr[e];
          std::memcpy(vd, vr, sizeof(float) * hd);
        }
      }
    });

    // Causal attention: every (row, KV head) over its sequence's positions 0..pos, for all the
    // query heads that share the KV head.
    const int group = nh / nkv;
    int64_t attn_work = 0;
    for (int r = 0; r < M; ++r) attn_work += int64_t(rows[r].pos + 1) * nh * hd;
    const int64_t attn_tasks = int64_t(M) * nkv;
    const int64_t attn_chunk =
        attn_work < (1 << 16) ? attn_tasks : std::max<int64_t>(1, attn_tasks / (pool.size() * 8));
    pool.parallel_for(attn_tasks, attn_chunk, [&](int64_t a, int64_t b) {
      thread_local std::vector<float> scores;
      for (int64_t t = a; t < b; ++t) {
        const int r = int(t / nkv), kvh = int(t % nkv);
        const SeqStep& st = batch[rows[r].seq];
        const int n_pos = rows[r].pos + 1;
        if (scores.size() < size_t(group) * size_t(n_pos)) scores.resize(size_t(group) * n_pos);
        const size_t qoff = size_t(r) * qdim + size_t(kvh) * group * hd;
        const AttnGroup ag{s.q.data() + qoff,
                           group,
                           hd,
                           n_pos,
                           kv_->k(l, kvh),
                           kv_->v(l, kvh),
                           st.block_table.data(),
                           bs,
                           kv_->block_stride(),
                           opts_.kv_type == KvType::F16,
                           scores.data(),
                           s.att.data() + qoff};
        attention_group(ag);
      }
    });

    // Output projection and residual.
    const MatmulJob o[1] = {{&L.wo, s.tmp.data(), dim}};
    matmul(o, s.att.data(), M, s.qx, pool);
    if (tp_) tp_->comm->allreduce_sum(s.tmp.data(), size_t(M) * dim);  // row-parallel o_proj
    rows_parallel([&](int r) {
      add_inplace(x + size_t(r) * dim, s.tmp.data() + size_t(r) * dim, dim);
      rmsnorm(x + size_t(r) * dim, reinterpret_cast<const float*>(lw.ffn_norm.data),
              xb + size_t(r) * dim, dim, c.rms_eps);
    });

    // SwiGLU feed-forward and residual.
    const MatmulJob gu[2] = {{&L.gate, s.g.data(), ffn}, {&L.up, s.u.data(), ffn}};
    matmul(gu, xb, M, s.qx, pool);
    rows_parallel(
        [&](int r) { silu_mul(s.g.data() + size_t(r) * ffn, s.u.data() + size_t(r) * ffn, ffn); });
    const MatmulJob dn[1] = {{&L.down, s.tmp.data(), dim}};
    matmul(dn, s.g.data(), M, s.qx, pool);
    if (tp_) tp_->comm->allreduce_sum(s.tmp.data(), size_t(M) * dim);  // row-parallel down
    rows_parallel(
        [&](int r) { add_inplace(x + size_t(r) * dim, s.tmp.data() + size_t(r) * dim, dim); });
  }

  // Final norm and logits for the rows that want them.
  int nl = 0;
  for (int r = 0; r < M; ++r) nl += want[r] ? 1 : 0;
  if (nl == 0 || (logits == nullptr && !tp_)) return;  // every rank takes part in the gather
  grow(s.logit_in, size_t(nl) * dim);
  for (int r = 0, i = 0; r < M; ++r) {
    if (!want[r]) continue;
    rmsnorm(x + size_t(r) * dim, reinterpret_cast<const float*>(model_.out_norm.data),
            s.logit_in.data() + size_t(i) * dim, dim, c.rms_eps);
    ++i;
  }
  if (!tp_) {
    const MatmulJob out[1] = {{&s.output, logits, c.vocab_size}};
    matmul(out, s.logit_in.data(), nl, s.qx, pool);
    return;
  }
  // Vocabulary-parallel output: this rank's [nl][V_r] slice, gathered rank by rank on rank 0
  // and interleaved there into [nl][V].
  const ShardPlan& sp = tp_->plan;
  const int64_t Vl = s.output.rows;
  grow(tp_->part, size_t(nl) * Vl);
  const MatmulJob out[1] = {{&s.output, tp_->part.data(), Vl}};
  matmul(out, s.logit_in.data(), nl, s.qx, pool);
  std::vector<int> counts(size_t(sp.size));
  for (int r = 0; r < sp.size; ++r)
    counts[size_t(r)] = int(int64_t(nl) * (sp.vocab_begin[r + 1] - sp.vocab_begin[r]));
  const bool root = tp_->comm->rank() == 0;
  if (root) grow(tp_->gathered, size_t(nl) * c.vocab_size);
  tp_->comm->gatherv(tp_->part.data(), counts[size_t(sp.rank)],
                     root ? tp_->gathered.data() : nullptr, counts);
  if (!root || logits == nullptr) return;
  for (int r = 0; r < sp.size; ++r) {
    const int64_t v0 = sp.vocab_begin[r], vn = sp.vocab_begin[r + 1] - v0;
    const float* src = tp_->gathered.data() + size_t(int64_t(nl) * v0);
    for (int i = 0; i < nl; ++i)
      std::memcpy(logits + size_t(i) * c.vocab_size + v0, src + size_t(i) * vn, sizeof(float) * vn);
  }
}

}  // namespace lmstream
