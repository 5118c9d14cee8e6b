// The quantize pipeline (quantize.h): load with model/'s loaders, choose types with rules.h,
// convert rows on a pool of threads (each row: decode to fp32, HF Q/K rows permuted to GGUF's
// interleaved RoPE order, encode with model/dtype.h's quantize_row) and stream them through
// model/gguf_writer.h, one tensor at a time.
#include "quant/quantize.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

#include "base/files.h"
#include "model/gguf_writer.h"
#include "model/model.h"
#include "model/spm_proto.h"
#include "model/testgen.h"

namespace lmstream::quant {
namespace {

struct OutTensor {
  std::string name;
  const Tensor* src;
  int permute_heads = 0;  // HF Q/K rows: GGUF row r comes from hf_row_for_gguf_row(r, rows, this)
  DType type = DType::F32;
};

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

// model/dtype.h can write t (the kquant formats arrive there by their ggml ids).
bool writable(DType t) {
  return dtype_block_bytes(t) != 0 && dtype_block_elems(t) == ggml_block_size(t);
}

class Bar {
 public:
  Bar(std::FILE* f, uint64_t total) : f_(f), total_(std::max<uint64_t>(total, 1)) {
    tty_ = f_ && isatty(fileno(f_));
  }
  void update(uint64_t done, const std::string& what) {
    if (!f_) return;
    const int pct = int(done * 100 / total_);
    if (tty_) {
      const int w = 30, fill = pct * w / 100;
      std::fprintf(f_, "\r[%s%s] %3d%% %-40.40s", std::string(size_t(fill), '#').c_str(),
                   std::string(size_t(w - fill), '.').c_str(), pct, what.c_str());
      std::fflush(f_);
    } else if (pct / 10 > last_ / 10 || last_ < 0) {
      std::fprintf(f_, "quantize: %d%% (%s)\n", pct, what.c_str());
      std::fflush(f_);
    }
    last_ = pct;
  }
  void done() {
    if (f_ && tty_) std::fprintf(f_, "\n");
  }

 private:
  std::FILE* f_;
  uint64_t total_;
  bool tty_ = false;
  int last_ = -1;
};

void add_metadata(GgufWriter& w, const Model& m, FileType ft) {
  const LlamaConfig& c = m.cfg;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", m.name);
  w.add_u32("general.file_type", uint32_t(ft));
  w.add_u32("general.quantization_version", 2);
  w.add_u32("general.alignment", GgufWriter::kAlignment);
  w.add_u32("llama.context_length", uint32_t(c.max_pos));
  w.add_u32("llama.embedding_length", uint32_t(c.dim));
  w.add_u32("llama.block_count", uint32_t(c.n_layers));
  w.add_u32("llama.feed_forward_length", uint32_t(c.ffn_dim));
  w.add_u32("llama.rope.dimension_count", uint32_t(c.head_dim));
  w.add_u32("llama.attention.head_count", uint32_t(c.n_heads));
  w.add_u32("llama.attention.head_count_kv", uint32_t(c.n_kv_heads));
  if (c.head_dim * c.n_heads != c.dim) {
    w.add_u32("llama.attention.key_length", uint32_t(c.head_dim));
    w.add_u32("llama.attention.value_length", uint32_t(c.head_dim));
  }
  w.add_f32("llama.attention.layer_norm_rms_epsilon", c.rms_eps);
  w.add_f32("llama.rope.freq_base", c.rope_theta);
  w.add_u32("llama.vocab_size", uint32_t(c.vocab_size));

  const TokenizerSpec& t = m.tokenizer;
  std::vector<std::string> tokens = t.tokens;
  std::vector<float> scores = t.scores;
  std::vector<int32_t> types;
  for (TokenType ty : t.types) types.push_back(int32_t(ty));
  if (tokens.empty()) {
    if (t.sp_model_path.empty())
      throw ModelError(m.path + ": no tokenizer (tokenizer.model or an embedded vocabulary)");
    std::string bytes;
    try {
      bytes = base::read_file(t.sp_model_path);
    } catch (const std::exception& e) {
      throw ModelError(e.what());
    }
    for (const SpPiece& p : decode_sp_pieces(bytes, t.sp_model_path)) {
      tokens.push_back(p.piece);
      scores.push_back(p.score);
      types.push_back(int32_t(p.type));
    }
  }
  if (scores.size() != tokens.size()) scores.assign(tokens.size(), 0.f);
  if (types.size() != tokens.size()) types.assign(tokens.size(), int32_t(TokenType::kNormal));
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_f32_array("tokenizer.ggml.scores", scores);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(t.bos_id));
  w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(t.eos_id));
  w.add_u32("tokenizer.ggml.unknown_token_id", uint32_t(t.unk_id));
  if (t.pad_id >= 0) w.add_u32("tokenizer.ggml.padding_token_id", uint32_t(t.pad_id));
  w.add_bool("tokenizer.ggml.add_bos_token", t.add_bos);
  w.add_bool("tokenizer.ggml.add_eos_token", t.add_eos);
  w.add_bool("tokenizer.ggml.add_space_prefix", t.add_space_prefix);
  if (!t.chat_template.empty()) w.add_string("tokenizer.chat_template", t.chat_template);
}

// The tensors in llama.cpp's converted order, with their GGUF names.
std::vector<OutTensor> out_tensors(const Model& m) {
  const bool hf = m.cfg.rope_layout == RopeLayout::kHalfSplit;
  const bool tied = m.output.data == m.tok_embd.data;
  std::vector<OutTensor> v;
  v.push_back({"token_embd.weight", &m.tok_embd});
  v.push_back({"output_norm.weight", &m.out_norm});
  if (!tied) v.push_back({"output.weight", &m.output});
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const LayerWeights& l = m.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    v.push_back({p + "attn_norm.weight", &l.attn_norm});
    v.push_back({p + "attn_q.weight", &l.wq, hf ? m.cfg.n_heads : 0});
    v.push_back({p + "attn_k.weight", &l.wk, hf ? m.cfg.n_kv_heads : 0});
    v.push_back({p + "attn_v.weight", &l.wv});
    v.push_back({p + "attn_output.weight", &l.wo});
    v.push_back({p + "ffn_norm.weight", &l.ffn_norm});
    v.push_back({p + "ffn_gate.weight", &l.w_gate});
    v.push_back({p + "ffn_up.weight", &l.w_up});
    v.push_back({p + "ffn_down.weight", &l.w_down});
  }
  return v;
}

bool is_1d(const OutTensor& t) {
  return t.name.find("_norm.weight") != std::string::npos;  // the only 1-D tensors of a Llama
}

void convert_tensor(const OutTensor& t, uint8_t* dst, int threads,
                    std::atomic<uint64_t>& rows_done) {
  const Tensor& s = *t.src;
  const int64_t rows = s.rows, cols = s.cols;
  const size_t orb = dtype_row_bytes(t.type, cols);
  std::atomic<int64_t> next{0};
  constexpr int64_t kChunk = 16;
  auto work = [&] {
    std::vector<float> buf(static_cast<size_t>(cols));
    for (;;) {
      const int64_t r0 = next.fetch_add(kChunk);
      if (r0 >= rows) return;
      const int64_t r1 = std::min(rows, r0 + kChunk);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t sr = t.permute_heads ? hf_row_for_gguf_row(r, rows, t.permute_heads) : r;
        dequantize_row(s.type, s.row(sr), buf.data(), cols);
        quantize_row(t.type, buf.data(), dst + size_t(r) * orb, cols);
      }
      rows_done.fetch_add(uint64_t(r1 - r0));
    }
  };
  const int n = int(std::clamp<int64_t>(threads, 1, std::max<int64_t>(1, rows / kChunk)));
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
}

}  // namespace

QuantizeResult quantize_model(const QuantizeOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.out.empty()) throw std::invalid_argument("quantize: no output path");
  std::unique_ptr<Model> m = load_model(o.in);
  std::vector<OutTensor> list = out_tensors(*m);

  ModelShape shape;
  shape.n_layer = m->cfg.n_layers;
  shape.n_head = m->cfg.n_heads;
  shape.n_head_kv = m->cfg.n_kv_heads;
  shape.tied = m->output.data == m->tok_embd.data;
  QuantizeResult res;
  uint64_t total_elems = 0;
  for (OutTensor& t : list) {
    if (!is_float(t.src->type))
      throw ModelError(o.in + ": tensor '" + t.name + "' is " + dtype_name(t.src->type) +
                       "; quantize reads F32, F16 or BF16 models only");
    TensorDesc d{t.name, is_1d(t) ? 1 : 2, t.src->cols};
    t.type = tensor_type(d, shape, o.type);
    if (!writable(t.type))
      throw std::runtime_error(std::string("quantize: this build cannot write type ") +
                               ggml_type_name(t.type) + " (needed for " + t.name + " in " +
                               file_type_name(o.type) + ")");
    total_elems += uint64_t(t.src->rows) * uint64_t(t.src->cols);
  }

  const std::string tmp = o.out + ".tmp";
  try {
    GgufWriter w;
    add_metadata(w, *m, o.type);
    for (const OutTensor& t : list)
      w.add_tensor(t.name, t.type, is_1d(t) ? 0 : t.src->rows, t.src->cols);
    w.begin(tmp);
    Bar bar(o.progress, total_elems);
    uint64_t elems_done = 0;
    std::vector<uint8_t> buf;
    for (size_t i = 0; i < list.size(); ++i) {
      const OutTensor& t = list[i];
      const size_t n = dtype_row_bytes(t.type, t.src->cols) * size_t(t.src->rows);
      buf.resize(n);
      std::atomic<uint64_t> rows_done{0};
      convert_tensor(t, buf.data(), o.threads, rows_done);
      w.write_tensor(buf.data(), n);
      elems_done += uint64_t(t.src->rows) * uint64_t(t.src->cols);
      res.tensor_bytes += n;
      res.in_tensor_bytes += t.src->nbytes();
      res.tensors_by_type[ggml_type_name(t.type)]++;
      bar.update(elems_done, std::to_string(i + 1) + "/" + std::to_string(list.size()) + " " +
                                 t.name + " " + ggml_type_name(t.type));
    }
    w.finish();
    bar.done();
    std::filesystem::rename(tmp, o.out);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  res.elements = total_elems;
  res.file_bytes = std::filesystem::file_size(o.out);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace lmstream::quant
