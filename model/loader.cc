// load_model(): picks the format (directory = Hugging Face, file = GGUF by magic), then the
// shared validation and post-processing; plus Model::weight_bytes().
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "model/loader_internal.h"
#include "model/mmap.h"

namespace lmstream {

size_t Model::weight_bytes() const {
  size_t n = tok_embd.nbytes() + out_norm.nbytes();
  if (output.data != tok_embd.data) n += output.nbytes();
  for (const LayerWeights& l : layers)
    for (const Tensor* t :
         {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
      n += t->nbytes();
  return n;
}

void validate_config(const LlamaConfig& c, const std::string& file) {
  auto bad = [&](const std::string& what) {
    throw ModelError(file + ": invalid model configuration: " + what);
  };
  auto range = [&](const char* name, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
      bad(std::string(name) + " = " + std::to_string(v) + " (allowed " + std::to_string(lo) + ".." +
          std::to_string(hi) + ")");
  };
  range("dim", c.dim, 1, 65536);
  range("n_layers", c.n_layers, 1, 1024);
  range("n_heads", c.n_heads, 1, 4096);
  range("n_kv_heads", c.n_kv_heads, 1, c.n_heads);
  range("head_dim", c.head_dim, 2, 4096);
  range("ffn_dim", c.ffn_dim, 1, 1 << 20);
  range("vocab_size", c.vocab_size, 1, 1 << 22);
  range("max_pos", c.max_pos, 1, 1 << 24);
  if (c.n_heads % c.n_kv_heads != 0)
    bad("n_heads " + std::to_string(c.n_heads) + " is not a multiple of n_kv_heads " +
        std::to_string(c.n_kv_heads));
  if (c.head_dim % 2 != 0) bad("head_dim " + std::to_string(c.head_dim) + " is odd");
  if (!(c.rms_eps > 0.f && c.rms_eps < 1.f))
    bad("rms_norm_eps " + std::to_string(c.rms_eps) + " out of range");
  if (!(c.rope_theta > 0.f && std::isfinite(c.rope_theta)))
    bad("rope_theta " + std::to_string(c.rope_theta) + " out of range");
}

namespace {

void check_shape(const Tensor& t, int64_t rows, int64_t cols, const std::string& file) {
  if (!t.data) throw ModelError(file + ": missing tensor '" + t.name + "'");
  if (t.rows != rows || t.cols != cols)
    throw ModelError(file + ": shape mismatch for tensor '" + t.name + "': expected [" +
                     std::to_string(rows) + ", " + std::to_string(cols) + "], got [" +
                     std::to_string(t.rows) + ", " + std::to_string(t.cols) + "]");
}

std::vector<Tensor*> all_tensors(Model& m) {
  std::vector<Tensor*> v{&m.tok_embd, &m.out_norm};
  if (m.output.data != m.tok_embd.data) v.push_back(&m.output);
  for (LayerWeights& l : m.layers)
    for (Tensor* t :
         {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
      v.push_back(t);
  return v;
}

uint8_t* own(Model& m, size_t n) {
  m.owned.push_back(std::make_unique<uint8_t[]>(n ? n : 1));
  return m.owned.back().get();
}

// Converts rows [0, t.rows) of t into type `to`, using a few threads for big matrices.
Tensor convert(Model& m, const Tensor& t, DType to) {
  Tensor out = t;
  out.type = to;
  uint8_t* dst = own(m, out.nbytes());
  const size_t in_rb = t.row_bytes(), out_rb = out.row_bytes();
  auto work = [&](int64_t r0, int64_t r1) {
    std::vector<float> buf(size_t(t.cols));
    for (int64_t r = r0; r < r1; ++r) {
      dequantize_row(t.type, t.data + size_t(r) * in_rb, buf.data(), t.cols);
      quantize_row(to, buf.data(), dst + size_t(r) * out_rb, t.cols);
    }
  };
  const int64_t elems = t.rows * t.cols;
  int nt = elems < (int64_t(1) << 20)
               ? 1
               : int(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1u, 16u));
  std::vector<std::thread> th;
  for (int k = 0; k < nt; ++k) {
    int64_t r0 = t.rows * k / nt, r1 = t.rows * (k + 1) / nt;
    if (k + 1 == nt)
      work(r0, r1);
    else
      th.emplace_back(work, r0, r1);
  }
  for (auto& x : th) x.join();
  out.data = dst;
  return out;
}

bool aligned_for(const Tensor& t) {
  size_t a = t.type == DType::F32 ? 4 : 2;
  return reinterpret_cast<uintptr_t>(t.data) % a == 0;
}

}  // namespace

void validate_shapes(const Model& m, const std::string& file) {
  const LlamaConfig& c = m.cfg;
  const int64_t q = int64_t(c.n_heads) * c.head_dim, kv = int64_t(c.n_kv_heads) * c.head_dim;
  check_shape(m.tok_embd, c.vocab_size, c.dim, file);
  check_shape(m.out_norm, 1, c.dim, file);
  check_shape(m.output, c.vocab_size, c.dim, file);
  if (m.layers.size() != size_t(c.n_layers)) throw ModelError(file + ": layer count mismatch");
  for (const LayerWeights& l : m.layers) {
    check_shape(l.attn_norm, 1, c.dim, file);
    check_shape(l.wq, q, c.dim, file);
    check_shape(l.wk, kv, c.dim, file);
    check_shape(l.wv, kv, c.dim, file);
    check_shape(l.wo, c.dim, q, file);
    check_shape(l.ffn_norm, 1, c.dim, file);
    check_shape(l.w_gate, c.ffn_dim, c.dim, file);
    check_shape(l.w_up, c.ffn_dim, c.dim, file);
    check_shape(l.w_down, c.dim, c.ffn_dim, file);
  }
}

void finalize_model(Model& m, const LoadOptions& opts) {
  const bool tied = m.output.data == m.tok_embd.data;
  auto is_norm = [&](const Tensor* t) {
    if (t == &m.out_norm) return true;
    for (LayerWeights& l : m.layers)
      if (t == &l.attn_norm || t == &l.ffn_norm) return true;
    return false;
  };
  if (opts.quantize && !dtype_is_quantized(*opts.quantize) && *opts.quantize != DType::F32 &&
      *opts.quantize != DType::F16 && *opts.quantize != DType::BF16)
    throw ModelError(m.path + ": unsupported --quantize type");
  for (Tensor* t : all_tensors(m)) {
    if (is_norm(t)) {
      if (t->type != DType::F32 || !aligned_for(*t)) *t = convert(m, *t, DType::F32);
      continue;
    }
    const bool is_float = !dtype_is_quantized(t->type);
    if (opts.quantize && is_float && t->type != *opts.quantize) {
      if (t->cols % dtype_block_elems(*opts.quantize) != 0)
        throw ModelError(m.path + ": cannot quantize tensor '" + t->name + "' to " +
                         dtype_name(*opts.quantize) + ": row length " + std::to_string(t->cols) +
                         " is not a multiple of 32");
      *t = convert(m, *t, *opts.quantize);
    } else if (is_float && !aligned_for(*t)) {
      *t = convert(m, *t, t->type);  // a copy, so kernels can load elements directly
    }
  }
  if (tied) m.output = m.tok_embd;
}

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& opts) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw ModelError(path + ": no such file or directory");
  std::unique_ptr<Model> m;
  if (S_ISDIR(st.st_mode)) {
    m = load_hf_model(path);
  } else {
    m = load_gguf_model(path);
  }
  validate_shapes(*m, path);
  finalize_model(*m, opts);
  return m;
}

}  // namespace lmstream
