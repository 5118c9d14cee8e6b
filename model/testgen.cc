// Test-model generator (see testgen.h): canonical tensor list in HF naming, a fast seeded
// generator per row, GGUF and safetensors output, and the tokenizer files.
#include "model/testgen.h"

#include <sys/stat.h>

#include <sentencepiece_processor.h>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "model/gguf_writer.h"
#include "model/model.h"
#include "model/safetensors_writer.h"
#include "model/spm_proto.h"

namespace lmstream {
namespace {

const char* kChatTemplate =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
    "system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = "
    "false %}{% endif "
    "%}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == "
    "0) %}{{ "
    "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% "
    "endif %}{% if "
    "loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message "
    "+ "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% "
    "endif %}{% if "
    "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif "
    "message['role'] "
    "== 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

struct GenTensor {
  std::string hf, gguf;
  int64_t rows, cols;  // rows == 0: 1-D
  int permute_heads;   // >0: Q/K matrix, GGUF rows permuted with this many heads
};

std::vector<GenTensor> tensor_list(const LlamaConfig& c) {
  const int64_t q = int64_t(c.n_heads) * c.head_dim, kv = int64_t(c.n_kv_heads) * c.head_dim;
  std::vector<GenTensor> v;
  v.push_back({"model.embed_tokens.weight", "token_embd.weight", c.vocab_size, c.dim, 0});
  for (int i = 0; i < c.n_layers; ++i) {
    std::string h = "model.layers." + std::to_string(i) + ".", g = "blk." + std::to_string(i) + ".";
    v.push_back({h + "input_layernorm.weight", g + "attn_norm.weight", 0, c.dim, 0});
    v.push_back({h + "self_attn.q_proj.weight", g + "attn_q.weight", q, c.dim, c.n_heads});
    v.push_back({h + "self_attn.k_proj.weight", g + "attn_k.weight", kv, c.dim, c.n_kv_heads});
    v.push_back({h + "self_attn.v_proj.weight", g + "attn_v.weight", kv, c.dim, 0});
    v.push_back({h + "self_attn.o_proj.weight", g + "attn_output.weight", c.dim, q, 0});
    v.push_back({h + "post_attention_layernorm.weight", g + "ffn_norm.weight", 0, c.dim, 0});
    v.push_back({h + "mlp.gate_proj.weight", g + "ffn_gate.weight", c.ffn_dim, c.dim, 0});
    v.push_back({h + "mlp.up_proj.weight", g + "ffn_up.weight", c.ffn_dim, c.dim, 0});
    v.push_back({h + "mlp.down_proj.weight", g + "ffn_down.weight", c.dim, c.ffn_dim, 0});
  }
  v.push_back({"model.norm.weight", "output_norm.weight", 0, c.dim, 0});
  if (!c.tie_embeddings) v.push_back({"lm_head.weight", "output.weight", c.vocab_size, c.dim, 0});
  return v;
}

// TestModelOptions::favor_token: the weight put in column 0 of every embedding row and of the
// favoured token's output row (other weights are about 1/sqrt(dim)).
constexpr float kFavorWeight = 16.f;

void apply_favor(const std::string& hf_name, int64_t row, int32_t token, float* v) {
  if (token < 0) return;
  if (hf_name == "model.embed_tokens.weight" || (hf_name == "lm_head.weight" && row == token))
    v[0] = kFavorWeight;
}

// Fills `rows` rows of a tensor in `type` (rows [0, n) of the file's order) using a few threads.
// round_via: F16/BF16 to round values through that type first (GGUF F32 norms of an f16/bf16
// model then equal the HF checkpoint's norms exactly).
void fill_rows(const GenTensor& t, uint64_t seed, DType type, bool gguf_order, uint8_t* dst,
               DType round_via = DType::F32, int32_t favor_token = -1) {
  const int64_t rows = t.rows ? t.rows : 1;
  const size_t rb = dtype_row_bytes(type, t.cols);
  auto work = [&](int64_t r0, int64_t r1) {
    std::vector<float> buf(size_t(t.cols));
    for (int64_t r = r0; r < r1; ++r) {
      int64_t src =
          gguf_order && t.permute_heads ? hf_row_for_gguf_row(r, rows, t.permute_heads) : r;
      test_model_row(seed, t.hf, src, t.cols, buf.data());
      apply_favor(t.hf, src, favor_token, buf.data());
      if (round_via == DType::F16 || round_via == DType::BF16) {
        std::vector<uint8_t> tmp(dtype_row_bytes(round_via, t.cols));
        quantize_row(round_via, buf.data(), tmp.data(), t.cols);
        dequantize_row(round_via, tmp.data(), buf.data(), t.cols);
      }
      quantize_row(type, buf.data(), dst + size_t(r) * rb, t.cols);
    }
  };
  int nt = rows * t.cols < (1 << 18)
               ? 1
               : int(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1u, 8u));
  std::vector<std::thread> th;
  for (int k = 0; k < nt; ++k) {
    int64_t r0 = rows * k / nt, r1 = rows * (k + 1) / nt;
    if (k + 1 == nt)
      work(r0, r1);
    else
      th.emplace_back(work, r0, r1);
  }
  for (auto& x : th) x.join();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(path + ": cannot open tokenizer model");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream o(path, std::ios::binary | std::ios::trunc);
  o.write(bytes.data(), std::streamsize(bytes.size()));
  o.close();
  if (!o) throw ModelError(path + ": write failed");
}

struct Vocab {
  std::string model_bytes;  // serialized SentencePiece model
  std::vector<SpPiece> pieces;
  int bos = 1, eos = 2, unk = 0;
};

Vocab load_vocab(const std::string& path) {
  Vocab v;
  std::string name = path.empty() ? "built-in tokenizer" : path;
  if (path.empty()) {
    v.pieces = builtin_sp_vocab();
    v.model_bytes = encode_sp_model(v.pieces);
  } else {
    v.model_bytes = read_file(path);
    v.pieces = decode_sp_pieces(v.model_bytes, path);
  }
  sentencepiece::SentencePieceProcessor sp;
  auto st = sp.LoadFromSerializedProto(v.model_bytes);
  if (!st.ok()) throw ModelError(name + ": not a SentencePiece model: " + st.ToString());
  if (size_t(sp.GetPieceSize()) != v.pieces.size())
    throw ModelError(name + ": piece count mismatch");
  for (int i = 0; i < sp.GetPieceSize(); ++i) v.pieces[size_t(i)].score = sp.GetScore(i);
  v.bos = sp.bos_id(), v.eos = sp.eos_id(), v.unk = sp.unk_id();
  return v;
}

void make_dir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    throw ModelError(dir + ": cannot create: " + std::strerror(errno));
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw ModelError(dir + ": exists and is not a directory");
}

uint32_t file_type(DType t) {
  switch (t) {
    case DType::F32:
      return 0;
    case DType::F16:
      return 1;
    case DType::Q4_0:
      return 2;
    case DType::Q8_0:
      return 7;
    case DType::BF16:
      return 32;
    case DType::Q4_1:
      return 3;
    case DType::Q5_0:
      return 8;
    case DType::Q5_1:
      return 9;
    case DType::Q2_K:
      return 10;
    case DType::Q3_K:
      return 11;  // Q3_K_S: every matrix Q3_K
    case DType::Q4_K:
      return 14;  // Q4_K_S
    case DType::Q5_K:
      return 16;  // Q5_K_S
    case DType::Q6_K:
      return 18;
  }
  return 0;
}

// llama-quantize's replacement for a K-quant type when a row is not a multiple of 256.
DType fallback_type(DType t) {
  switch (t) {
    case DType::Q2_K:
    case DType::Q3_K:
      return DType::Q4_0;
    case DType::Q4_K:
      return DType::Q5_0;
    case DType::Q5_K:
      return DType::Q5_1;
    case DType::Q6_K:
      return DType::Q8_0;
    default:
      return DType::F16;
  }
}

void write_gguf(const TestModelOptions& o, const LlamaConfig& c, const Vocab& v) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", "lmstream-test-" + o.shape);
  w.add_u32("general.file_type", file_type(o.dtype));
  if (dtype_is_quantized(o.dtype)) w.add_u32("general.quantization_version", 2);
  w.add_u32("general.alignment", GgufWriter::kAlignment);
  w.add_u32("llama.context_length", uint32_t(c.max_pos));
  w.add_u32("llama.embedding_length", uint32_t(c.dim));
  w.add_u32("llama.block_count", uint32_t(c.n_layers));
  w.add_u32("llama.feed_forward_length", uint32_t(c.ffn_dim));
  w.add_u32("llama.rope.dimension_count", uint32_t(c.head_dim));
  w.add_u32("llama.attention.head_count", uint32_t(c.n_heads));
  w.add_u32("llama.attention.head_count_kv", uint32_t(c.n_kv_heads));
  w.add_f32("llama.attention.layer_norm_rms_epsilon", c.rms_eps);
  w.add_f32("llama.rope.freq_base", c.rope_theta);
  w.add_u32("llama.vocab_size", uint32_t(c.vocab_size));
  w.add_string("tokenizer.ggml.model", "llama");
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (const SpPiece& p : v.pieces) {
    tokens.push_back(p.piece);
    scores.push_back(p.score);
    types.push_back(int32_t(p.type));
  }
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_f32_array("tokenizer.ggml.scores", scores);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(v.bos));
  w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(v.eos));
  w.add_u32("tokenizer.ggml.unknown_token_id", uint32_t(v.unk));
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  w.add_bool("tokenizer.ggml.add_eos_token", false);
  w.add_bool("tokenizer.ggml.add_space_prefix", true);
  w.add_string("tokenizer.chat_template", kChatTemplate);

  auto type_of = [&](const GenTensor& t) {
    if (!t.rows) return DType::F32;
    if (t.cols % dtype_block_elems(o.dtype) == 0) return o.dtype;
    // Rows that do not fill 256-element super-blocks take llama.cpp's fallback type.
    const DType fb = fallback_type(o.dtype);
    return t.cols % dtype_block_elems(fb) == 0 ? fb : DType::F16;
  };
  const auto list = tensor_list(c);
  for (const GenTensor& t : list) w.add_tensor(t.gguf, type_of(t), t.rows, t.cols);
  w.begin(o.out);
  std::vector<uint8_t> buf;
  for (const GenTensor& t : list) {
    DType ty = type_of(t);
    size_t n = dtype_row_bytes(ty, t.cols) * size_t(t.rows ? t.rows : 1);
    buf.resize(n);
    fill_rows(t, o.seed, ty, true, buf.data(), o.dtype, o.favor_token);
    w.write_tensor(buf.data(), n);
  }
  w.finish();
}

void write_hf(const TestModelOptions& o, const LlamaConfig& c, const Vocab& v) {
  if (dtype_is_quantized(o.dtype))
    throw std::invalid_argument(std::string("--format hf supports f32, f16 and bf16 only, not ") +
                                dtype_name(o.dtype));
  make_dir(o.out);
  const std::string st_dtype = o.dtype == DType::F32   ? "F32"
                               : o.dtype == DType::F16 ? "F16"
                                                       : "BF16";
  const auto list = tensor_list(c);
  std::vector<SafetensorsOut> outs;
  uint64_t total = 0;
  for (const GenTensor& t : list) {
    SafetensorsOut s;
    s.name = t.hf;
    s.dtype = st_dtype;
    s.shape = t.rows ? std::vector<int64_t>{t.rows, t.cols} : std::vector<int64_t>{t.cols};
    s.nbytes = dtype_row_bytes(o.dtype, t.cols) * uint64_t(t.rows ? t.rows : 1);
    total += s.nbytes;
    const GenTensor* tp = &t;
    uint64_t seed = o.seed;
    DType ty = o.dtype;
    int32_t favor = o.favor_token;
    s.fill = [tp, seed, ty, favor](uint8_t* dst) {
      fill_rows(*tp, seed, ty, false, dst, DType::F32, favor);
    };
    outs.push_back(std::move(s));
  }
  const int shards = std::clamp(o.hf_shards, 1, int(outs.size()));
  if (shards == 1) {
    write_safetensors(o.out + "/model.safetensors", outs);
  } else {
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = nlohmann::ordered_json::object();
    for (int k = 0; k < shards; ++k) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", k + 1, shards);
      size_t b = outs.size() * size_t(k) / size_t(shards),
             e = outs.size() * size_t(k + 1) / size_t(shards);
      std::vector<SafetensorsOut> part(outs.begin() + long(b), outs.begin() + long(e));
      for (const auto& s : part) index["weight_map"][s.name] = name;
      write_safetensors(o.out + "/" + name, part);
    }
    write_file(o.out + "/model.safetensors.index.json", index.dump(2) + "\n");
  }
  nlohmann::ordered_json cfg = {{"architectures", {"LlamaForCausalLM"}},
                                {"model_type", "llama"},
                                {"hidden_size", c.dim},
                                {"intermediate_size", c.ffn_dim},
                                {"num_attention_heads", c.n_heads},
                                {"num_key_value_heads", c.n_kv_heads},
                                {"num_hidden_layers", c.n_layers},
                                {"hidden_act", "silu"},
                                {"max_position_embeddings", c.max_pos},
                                {"rms_norm_eps", c.rms_eps},
                                {"rope_theta", c.rope_theta},
                                {"rope_scaling", nullptr},
                                {"vocab_size", c.vocab_size},
                                {"tie_word_embeddings", c.tie_embeddings},
                                {"bos_token_id", v.bos},
                                {"eos_token_id", v.eos},
                                {"attention_bias", false},
                                {"mlp_bias", false},
                                {"torch_dtype", o.dtype == DType::F32   ? "float32"
                                                : o.dtype == DType::F16 ? "float16"
                                                                        : "bfloat16"}};
  write_file(o.out + "/config.json", cfg.dump(2) + "\n");
  write_file(o.out + "/tokenizer.model", v.model_bytes);
  nlohmann::ordered_json tc = {{"tokenizer_class", "LlamaTokenizer"},
                               {"add_bos_token", true},
                               {"add_eos_token", false},
                               {"bos_token", "<s>"},
                               {"eos_token", "</s>"},
                               {"unk_token", "<unk>"},
                               {"pad_token", nullptr},
                               {"model_max_length", c.max_pos},
                               {"legacy", false},
                               {"chat_template", kChatTemplate}};
  write_file(o.out + "/tokenizer_config.json", tc.dump(2) + "\n");
  nlohmann::ordered_json gc = {{"bos_token_id", v.bos},
                               {"eos_token_id", v.eos},
                               {"do_sample", true},
                               {"temperature", 0.6},
                               {"top_p", 0.9}};
  write_file(o.out + "/generation_config.json", gc.dump(2) + "\n");
}

}  // namespace

const char* hf_llama2_chat_template() { return kChatTemplate; }

LlamaConfig test_model_shape(const std::string& shape, std::optional<bool> gqa) {
  LlamaConfig c;
  auto set = [&](int dim, int layers, int heads, int kv, int ffn, int ctx) {
    c.dim = dim, c.n_layers = layers, c.n_heads = heads, c.n_kv_heads = kv, c.ffn_dim = ffn,
    c.max_pos = ctx;
  };
  if (shape == "micro")
    set(64, 2, 4, 2, 192, 256);
  else if (shape == "small")
    set(256, 4, 8, 2, 704, 1024);
  else if (shape == "micro-k")  // every matrix width a multiple of 256 (K-quant super-blocks)
    set(256, 2, 4, 2, 512, 256);
  else if (shape == "tinyllama")
    set(2048, 22, 32, 4, 5632, 2048);
  else if (shape == "llama2-7b")
    set(4096, 32, 32, 32, 11008, 4096);
  else
    throw std::invalid_argument("unknown shape '" + shape +
                                "' (micro, micro-k, small, tinyllama, llama2-7b)");
  if (gqa && !*gqa) c.n_kv_heads = c.n_heads;
  if (gqa && *gqa && c.n_kv_heads == c.n_heads) c.n_kv_heads = std::max(1, c.n_heads / 4);
  c.head_dim = c.dim / c.n_heads;
  c.rms_eps = 1e-5f;
  c.rope_theta = 10000.f;
  return c;
}

int64_t hf_row_for_gguf_row(int64_t r, int64_t rows, int n_head) {
  const int64_t hd = rows / n_head;
  const int64_t h = r / hd, w = r % hd;
  return h * hd + (w % 2) * (hd / 2) + w / 2;
}

void test_model_row(uint64_t seed, const std::string& hf_name, int64_t row, int64_t cols,
                    float* out) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull ^ fnv1a(hf_name);
  s ^= splitmix(s) + uint64_t(row) * 0xD1B54A32D192ED03ull;
  splitmix(s);
  const bool norm = hf_name.find("norm") != std::string::npos;
  // Approximately normal (sum of four uniforms, unit variance) scaled per kind of tensor.
  const float scale = norm ? 0.1f : 1.0f / std::sqrt(float(cols));
  const float mean = norm ? 1.0f : 0.0f;
  constexpr float k = 1.7320508f / 65536.f;  // sqrt(3) / 2^16
  for (int64_t i = 0; i < cols; ++i) {
    uint64_t x = splitmix(s);
    int32_t sum = int32_t(x & 0xffff) + int32_t((x >> 16) & 0xffff) + int32_t((x >> 32) & 0xffff) +
                  int32_t(x >> 48);
    out[i] = mean + scale * float(sum - 2 * 65535) * k;
  }
}

void make_test_model(const TestModelOptions& o) {
  if (o.format != "gguf" && o.format != "hf")
    throw std::invalid_argument("unknown format '" + o.format + "' (gguf, hf)");
  if (o.out.empty()) throw std::invalid_argument("no output path");
  LlamaConfig c = test_model_shape(o.shape, o.gqa);
  Vocab v = load_vocab(o.tokenizer);
  c.vocab_size = int(v.pieces.size());
  c.tie_embeddings = o.tie;
  if (o.favor_token >= 0 && (o.tie || o.favor_token >= c.vocab_size))
    throw std::invalid_argument(
        "favor_token needs an untied output matrix and an id below the vocabulary size (" +
        std::to_string(c.vocab_size) + ")");
  if (o.format == "gguf")
    write_gguf(o, c, v);
  else
    write_hf(o, c, v);
}

}  // namespace lmstream
