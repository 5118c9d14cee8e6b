// GGUF file -> Model: llama.* metadata to LlamaConfig, tokenizer.ggml.* to TokenizerSpec, and
// tensors as views into the mapping (GGUF ne[0] is the row length).
#include <climits>
#include <cmath>

#include "model/gguf.h"
#include "model/loader_internal.h"
#include "model/mmap.h"

namespace lmstream {
namespace {

class Meta {
 public:
  Meta(const GgufFile& g, const std::string& path) : g_(g), path_(path) {}

  [[noreturn]] void fail(const std::string& what) const { throw ModelError(path_ + ": " + what); }

  bool has(const std::string& k) const { return g_.find(k) != nullptr; }

  int64_t get_int(const std::string& k, std::optional<int64_t> def = std::nullopt) const {
    const GgufValue* v = g_.find(k);
    if (!v) {
      if (def) return *def;
      fail("missing metadata key '" + k + "'");
    }
    switch (v->type) {
      case GgufType::kU8:
      case GgufType::kI8:
      case GgufType::kU16:
      case GgufType::kI16:
      case GgufType::kU32:
      case GgufType::kI32:
      case GgufType::kI64:
        return v->i;
      case GgufType::kU64:
        if (v->i < 0) fail("metadata key '" + k + "' value out of range");
        return v->i;
      default:
        fail("metadata key '" + k + "' has type " + gguf_type_name(v->type) +
             ", expected an integer");
    }
  }
  int get_small_int(const std::string& k, std::optional<int64_t> def = std::nullopt) const {
    int64_t x = get_int(k, def);
    if (x < INT_MIN || x > INT_MAX)
      fail("metadata key '" + k + "' value " + std::to_string(x) + " out of range");
    return int(x);
  }
  double get_float(const std::string& k, double def) const {
    const GgufValue* v = g_.find(k);
    if (!v) return def;
    if (v->type == GgufType::kF32 || v->type == GgufType::kF64) return v->f;
    fail("metadata key '" + k + "' has type " + gguf_type_name(v->type) + ", expected a float");
  }
  bool get_bool(const std::string& k, bool def) const {
    const GgufValue* v = g_.find(k);
    if (!v) return def;
    if (v->type == GgufType::kBool) return v->i != 0;
    fail("metadata key '" + k + "' has type " + gguf_type_name(v->type) + ", expected a bool");
  }
  std::string get_string(const std::string& k, const std::string& def) const {
    const GgufValue* v = g_.find(k);
    if (!v) return def;
    if (v->type == GgufType::kString) return v->s;
    fail("metadata key '" + k + "' has type " + gguf_type_name(v->type) + ", expected a string");
  }
  const GgufValue* get_array(const std::string& k, GgufType elem, bool also_int = false) const {
    const GgufValue* v = g_.find(k);
    if (!v) return nullptr;
    const GgufType e = v->elem_type;
    const bool int_elem = e != GgufType::kF32 && e != GgufType::kF64 && e != GgufType::kString &&
                          e != GgufType::kArray && e != GgufType::kBool;
    const bool ok = v->type == GgufType::kArray && (e == elem || (also_int && int_elem));
    if (!ok) fail("metadata key '" + k + "' is not an array of " + gguf_type_name(elem));
    return v;
  }

 private:
  const GgufFile& g_;
  const std::string& path_;
};

LlamaConfig read_config(const Meta& m) {
  LlamaConfig c;
  c.dim = m.get_small_int("llama.embedding_length");
  c.n_layers = m.get_small_int("llama.block_count");
  c.n_heads = m.get_small_int("llama.attention.head_count");
  c.n_kv_heads = m.get_small_int("llama.attention.head_count_kv", c.n_heads);
  c.ffn_dim = m.get_small_int("llama.feed_forward_length");
  c.max_pos = m.get_small_int("llama.context_length");
  if (c.n_heads <= 0) m.fail("llama.attention.head_count must be positive");
  if (m.has("llama.attention.key_length"))
    c.head_dim = m.get_small_int("llama.attention.key_length");
  else if (m.has("llama.rope.dimension_count"))
    c.head_dim = m.get_small_int("llama.rope.dimension_count");
  else
    c.head_dim = c.dim / c.n_heads;
  if (m.has("llama.rope.dimension_count") && m.get_int("llama.rope.dimension_count") != c.head_dim)
    m.fail(
        "partial rotary embedding (llama.rope.dimension_count != head dimension) is not supported");
  c.rms_eps = float(m.get_float("llama.attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = float(m.get_float("llama.rope.freq_base", 10000.0));
  std::string scaling = m.get_string("llama.rope.scaling.type", "none");
  if (scaling != "none" &&
      !(scaling == "linear" && m.get_float("llama.rope.scaling.factor", 1.0) == 1.0))
    m.fail("rope scaling '" + scaling + "' is not supported");
  c.rope_layout = RopeLayout::kInterleaved;
  return c;
}

TokenizerSpec read_tokenizer(const Meta& m, int vocab) {
  TokenizerSpec t;
  std::string model = m.get_string("tokenizer.ggml.model", "");
  if (model.empty())
    m.fail("missing metadata key 'tokenizer.ggml.model' (no tokenizer in the file)");
  if (model != "llama")
    m.fail("unsupported tokenizer model '" + model +
           "' (only SentencePiece, tokenizer.ggml.model = \"llama\")");
  const GgufValue* tokens = m.get_array("tokenizer.ggml.tokens", GgufType::kString);
  if (!tokens || tokens->strs.empty()) m.fail("missing metadata key 'tokenizer.ggml.tokens'");
  t.tokens = tokens->strs;
  if (t.tokens.size() > size_t(vocab))
    m.fail("tokenizer has " + std::to_string(t.tokens.size()) +
           " tokens but the model's vocabulary is " + std::to_string(vocab));
  const size_t n = t.tokens.size();
  if (const GgufValue* s = m.get_array("tokenizer.ggml.scores", GgufType::kF32)) {
    if (s->floats.size() != n)
      m.fail("tokenizer.ggml.scores has " + std::to_string(s->floats.size()) +
             " entries, expected " + std::to_string(n));
    t.scores.reserve(n);
    for (double f : s->floats) t.scores.push_back(float(f));
  } else {
    t.scores.assign(n, 0.f);
  }
  if (const GgufValue* ty = m.get_array("tokenizer.ggml.token_type", GgufType::kI32, true)) {
    if (ty->ints.size() != n)
      m.fail("tokenizer.ggml.token_type has " + std::to_string(ty->ints.size()) +
             " entries, expected " + std::to_string(n));
    t.types.reserve(n);
    for (int64_t x : ty->ints) {
      if (x < 1 || x > 6)
        m.fail("tokenizer.ggml.token_type has invalid value " + std::to_string(x));
      t.types.push_back(TokenType(x));
    }
  } else {
    t.types.assign(n, TokenType::kNormal);
  }
  auto id = [&](const char* key, int32_t def) {
    int64_t v = m.get_int(key, def);
    if (v < -1 || v >= int64_t(n))
      m.fail(std::string(key) + " = " + std::to_string(v) + " is outside the vocabulary");
    return int32_t(v);
  };
  t.bos_id = id("tokenizer.ggml.bos_token_id", 1);
  t.eos_id = id("tokenizer.ggml.eos_token_id", 2);
  t.unk_id = id("tokenizer.ggml.unknown_token_id", 0);
  t.pad_id = id("tokenizer.ggml.padding_token_id", -1);
  t.add_bos = m.get_bool("tokenizer.ggml.add_bos_token", true);
  t.add_eos = m.get_bool("tokenizer.ggml.add_eos_token", false);
  t.add_space_prefix = m.get_bool("tokenizer.ggml.add_space_prefix", true);
  t.chat_template = m.get_string("tokenizer.chat_template", "");
  return t;
}

struct Mem {
  const uint8_t* base;
  const std::string& path;
};

Tensor view(const GgufFile& g, const Mem& f, const std::string& name, bool required = true) {
  const GgufTensorInfo* ti = g.find_tensor(name);
  if (!ti) {
    if (required) throw ModelError(f.path + ": missing tensor '" + name + "'");
    return {};
  }
  Tensor t;
  t.name = name;
  t.type = ti->type;
  t.cols = ti->ne[0];
  t.rows = 1;
  for (size_t k = 1; k < ti->ne.size(); ++k) t.rows *= ti->ne[k];
  t.data = f.base + g.data_offset + ti->offset;
  return t;
}

}  // namespace

std::unique_ptr<Model> load_gguf_model(const std::string& path) {
  auto file = MappedFile::open(path);
  auto m = load_gguf_from_memory(file->data(), file->size(), path);
  m->maps.push_back(std::move(file));
  return m;
}

std::unique_ptr<Model> load_gguf_from_memory(const uint8_t* data, size_t size,
                                             const std::string& path) {
  GgufFile g = parse_gguf(data, size, path);
  const Mem mem{data, path};
  const Mem* file = &mem;
  Meta meta(g, path);
  std::string arch = meta.get_string("general.architecture", "");
  if (arch.empty()) meta.fail("missing metadata key 'general.architecture'");
  if (arch != "llama")
    meta.fail("unsupported architecture '" + arch + "' (only llama is supported)");

  auto m = std::make_unique<Model>();
  m->path = path;
  m->format = "gguf";
  std::string base = path.substr(path.find_last_of('/') + 1);
  m->name = meta.get_string("general.name", base);
  m->cfg = read_config(meta);
  m->tok_embd = view(g, *file, "token_embd.weight");
  int64_t vocab = meta.get_int("llama.vocab_size", m->tok_embd.rows);
  if (vocab != m->tok_embd.rows)
    meta.fail("llama.vocab_size " + std::to_string(vocab) +
              " does not match token_embd.weight rows " + std::to_string(m->tok_embd.rows));
  if (vocab < 1 || vocab > (1 << 22))
    meta.fail("vocabulary size " + std::to_string(vocab) + " out of range");
  m->cfg.vocab_size = int(vocab);
  validate_config(m->cfg, path);

  m->out_norm = view(g, *file, "output_norm.weight");
  m->output = view(g, *file, "output.weight", false);
  if (!m->output.data) {
    m->output = m->tok_embd;
    m->cfg.tie_embeddings = true;
  }
  m->layers.resize(size_t(m->cfg.n_layers));
  for (int i = 0; i < m->cfg.n_layers; ++i) {
    std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights& l = m->layers[size_t(i)];
    l.attn_norm = view(g, *file, p + "attn_norm.weight");
    l.wq = view(g, *file, p + "attn_q.weight");
    l.wk = view(g, *file, p + "attn_k.weight");
    l.wv = view(g, *file, p + "attn_v.weight");
    l.wo = view(g, *file, p + "attn_output.weight");
    l.ffn_norm = view(g, *file, p + "ffn_norm.weight");
    l.w_gate = view(g, *file, p + "ffn_gate.weight");
    l.w_up = view(g, *file, p + "ffn_up.weight");
    l.w_down = view(g, *file, p + "ffn_down.weight");
  }
  m->tokenizer = read_tokenizer(meta, m->cfg.vocab_size);
  return m;
}

}  // namespace lmstream
