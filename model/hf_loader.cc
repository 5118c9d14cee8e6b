// Hugging Face directory -> Model: config.json, single or sharded *.safetensors (used in place),
// tokenizer.model, tokenizer_config.json and generation_config.json.
#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/loader_internal.h"
#include "model/mmap.h"
#include "model/safetensors.h"

namespace lmstream {
namespace {

using nlohmann::json;

bool exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

json read_json(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ModelError(file + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > (64u << 20))
    throw ModelError(file + ": file too large for a JSON configuration");
  try {
    json j = json::parse(text);
    if (!j.is_object()) throw ModelError(file + ": not a JSON object");
    return j;
  } catch (const json::exception& e) {
    throw ModelError(file + ": invalid JSON: " + e.what());
  }
}

class Config {
 public:
  Config(const json& j, const std::string& file) : j_(j), file_(file) {}
  [[noreturn]] void fail(const std::string& what) const { throw ModelError(file_ + ": " + what); }
  int get_int(const char* k, std::optional<int> def = std::nullopt) const {
    auto it = j_.find(k);
    if (it == j_.end() || it->is_null()) {
      if (def) return *def;
      fail(std::string("missing key '") + k + "'");
    }
    if (!it->is_number_integer()) fail(std::string("key '") + k + "' is not an integer");
    int64_t v = it->get<int64_t>();
    if (v < INT32_MIN || v > INT32_MAX) fail(std::string("key '") + k + "' out of range");
    return int(v);
  }
  double get_num(const json& obj, const char* k, double def) const {
    auto it = obj.find(k);
    if (it == obj.end() || it->is_null()) return def;
    if (!it->is_number()) fail(std::string("key '") + k + "' is not a number");
    return it->get<double>();
  }
  double get_num(const char* k, double def) const { return get_num(j_, k, def); }
  bool get_bool(const char* k, bool def) const {
    auto it = j_.find(k);
    if (it == j_.end() || it->is_null()) return def;
    if (!it->is_boolean()) fail(std::string("key '") + k + "' is not a boolean");
    return it->get<bool>();
  }

 private:
  const json& j_;
  const std::string& file_;
};

LlamaConfig read_config(const json& j, const std::string& file) {
  Config c(j, file);
  bool llama = false;
  std::string arch_name;
  if (auto a = j.find("architectures"); a != j.end() && a->is_array()) {
    for (const json& x : *a)
      if (x.is_string()) {
        if (arch_name.empty()) arch_name = x.get<std::string>();
        if (x.get<std::string>() == "LlamaForCausalLM") llama = true;
      }
  }
  if (auto t = j.find("model_type"); t != j.end() && t->is_string()) {
    if (t->get<std::string>() == "llama") llama = true;
    if (arch_name.empty()) arch_name = t->get<std::string>();
  }
  if (arch_name.empty()) arch_name = "unknown";
  if (!llama)
    c.fail("unsupported architecture '" + arch_name +
           "' (only Llama models, LlamaForCausalLM / model_type llama)");
  LlamaConfig cfg;
  cfg.dim = c.get_int("hidden_size");
  cfg.ffn_dim = c.get_int("intermediate_size");
  cfg.n_heads = c.get_int("num_attention_heads");
  cfg.n_kv_heads = c.get_int("num_key_value_heads", cfg.n_heads);
  cfg.n_layers = c.get_int("num_hidden_layers");
  cfg.vocab_size = c.get_int("vocab_size");
  cfg.max_pos = c.get_int("max_position_embeddings", 2048);
  if (cfg.n_heads <= 0) c.fail("num_attention_heads must be positive");
  cfg.head_dim = c.get_int("head_dim", cfg.dim / cfg.n_heads);
  cfg.rms_eps = float(c.get_num("rms_norm_eps", 1e-6));
  double theta = c.get_num("rope_theta", 10000.0);
  if (auto rp = j.find("rope_parameters"); rp != j.end() && rp->is_object()) {
    theta = c.get_num(*rp, "rope_theta", theta);
    if (auto rt = rp->find("rope_type"); rt != rp->end() && rt->is_string() && *rt != "default")
      c.fail("rope scaling '" + rt->get<std::string>() + "' is not supported");
  }
  if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null())
    c.fail("rope_scaling is not supported");
  cfg.rope_theta = float(theta);
  cfg.tie_embeddings = c.get_bool("tie_word_embeddings", false);
  cfg.rope_layout = RopeLayout::kHalfSplit;
  return cfg;
}

struct Shards {
  std::map<std::string, std::shared_ptr<MappedFile>> files;  // file name -> mapping
  std::map<std::string, std::pair<std::string, SafetensorsEntry>>
      tensors;  // tensor -> (file, entry)
};

void add_shard(Shards& s, const std::string& dir, const std::string& fname) {
  if (s.files.count(fname)) return;
  if (fname.empty() || fname.find('/') != std::string::npos ||
      fname.find("..") != std::string::npos)
    throw ModelError(dir + "/model.safetensors.index.json: invalid shard file name '" + fname +
                     "'");
  std::string path = dir + "/" + fname;
  auto f = MappedFile::open(path);
  SafetensorsHeader h = parse_safetensors(f->data(), f->size(), path);
  for (auto& [name, e] : h.tensors) {
    auto [it, fresh] = s.tensors.emplace(name, std::make_pair(fname, e));
    if (!fresh)
      throw ModelError(path + ": tensor '" + name + "' also appears in " + it->second.first);
  }
  s.files.emplace(fname, std::move(f));
}

Tensor view(const Shards& s, const std::string& dir, const std::string& name,
            bool required = true) {
  auto it = s.tensors.find(name);
  if (it == s.tensors.end()) {
    if (required) throw ModelError(dir + ": missing tensor '" + name + "'");
    return {};
  }
  const auto& [fname, e] = it->second;
  const std::string path = dir + "/" + fname;
  if (!e.type)
    throw ModelError(path + ": tensor '" + name + "' has dtype " + e.dtype +
                     "; supported: F32, F16, BF16");
  if (e.shape.empty() || e.shape.size() > 2)
    throw ModelError(path + ": tensor '" + name + "' has " + std::to_string(e.shape.size()) +
                     " dimensions, expected 1 or 2");
  Tensor t;
  t.name = name;
  t.type = *e.type;
  t.rows = e.shape.size() == 2 ? e.shape[0] : 1;
  t.cols = e.shape.back();
  t.data = s.files.at(fname)->data() + e.begin;
  return t;
}

void read_tokenizer_config(const std::string& dir, TokenizerSpec& t) {
  std::string file = dir + "/tokenizer_config.json";
  if (!exists(file)) return;
  json j = read_json(file);
  Config c(j, file);
  t.add_bos = c.get_bool("add_bos_token", t.add_bos);
  t.add_eos = c.get_bool("add_eos_token", t.add_eos);
  if (auto ct = j.find("chat_template"); ct != j.end()) {
    if (ct->is_string()) {
      t.chat_template = ct->get<std::string>();
    } else if (ct->is_array()) {  // [{"name": ..., "template": ...}]: take "default", else the
                                  // first
      for (const json& e : *ct)
        if (e.is_object() && e.contains("template") && e["template"].is_string() &&
            (t.chat_template.empty() || e.value("name", json()) == "default"))
          t.chat_template = e["template"].get<std::string>();
    }
  }
}

GenerationDefaults read_generation(const std::string& dir) {
  GenerationDefaults g;
  std::string file = dir + "/generation_config.json";
  if (!exists(file)) return g;
  json j = read_json(file);
  Config c(j, file);
  if (j.contains("do_sample")) g.has_do_sample = true, g.do_sample = c.get_bool("do_sample", false);
  if (j.contains("temperature") && !j["temperature"].is_null())
    g.has_temperature = true, g.temperature = float(c.get_num("temperature", 1.0));
  if (j.contains("top_p") && !j["top_p"].is_null())
    g.has_top_p = true, g.top_p = float(c.get_num("top_p", 1.0));
  if (j.contains("top_k") && !j["top_k"].is_null())
    g.has_top_k = true, g.top_k = c.get_int("top_k", 0);
  if (j.contains("repetition_penalty") && !j["repetition_penalty"].is_null())
    g.has_repetition_penalty = true,
    g.repetition_penalty = float(c.get_num("repetition_penalty", 1.0));
  if (j.contains("max_new_tokens") && !j["max_new_tokens"].is_null())
    g.max_new_tokens = c.get_int("max_new_tokens", 0);
  else if (j.contains("max_length") && !j["max_length"].is_null())
    g.max_new_tokens = c.get_int("max_length", 0);
  if (g.max_new_tokens < 0) g.max_new_tokens = 0;
  return g;
}

// eos_token_id may be one id or a list (the first is the tokenizer's own).
int j_eos(const json& j, int def) {
  auto it = j.find("eos_token_id");
  if (it == j.end()) return def;
  const json* v = &*it;
  if (v->is_array() && !v->empty()) v = &(*v)[0];
  if (!v->is_number_integer()) return def;
  int64_t x = v->get<int64_t>();
  return x < -1 || x > INT32_MAX ? def : int(x);
}

}  // namespace

std::unique_ptr<Model> load_hf_model(const std::string& dir_in) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::string cfg_file = dir + "/config.json";
  if (!exists(cfg_file)) throw ModelError(dir + ": not a model directory (no config.json)");
  json cj = read_json(cfg_file);
  auto m = std::make_unique<Model>();
  m->path = dir_in;
  m->format = "hf";
  m->name = dir.substr(dir.find_last_of('/') + 1);
  m->cfg = read_config(cj, cfg_file);
  validate_config(m->cfg, cfg_file);

  Shards shards;
  const std::string index = dir + "/model.safetensors.index.json";
  if (exists(index)) {
    json ij = read_json(index);
    auto wm = ij.find("weight_map");
    if (wm == ij.end() || !wm->is_object()) throw ModelError(index + ": missing weight_map");
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it->is_string())
        throw ModelError(index + ": weight_map entry '" + it.key() + "' is not a file name");
      add_shard(shards, dir, it->get<std::string>());
    }
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      auto t = shards.tensors.find(it.key());
      if (t == shards.tensors.end() || t->second.first != it->get<std::string>())
        throw ModelError(index + ": tensor '" + it.key() + "' is not in " + it->get<std::string>());
    }
  } else if (exists(dir + "/model.safetensors")) {
    add_shard(shards, dir, "model.safetensors");
  } else {
    throw ModelError(dir + ": no model.safetensors or model.safetensors.index.json");
  }

  m->tok_embd = view(shards, dir, "model.embed_tokens.weight");
  m->out_norm = view(shards, dir, "model.norm.weight");
  m->output = view(shards, dir, "lm_head.weight", !m->cfg.tie_embeddings);
  if (!m->output.data) m->output = m->tok_embd;
  m->layers.resize(size_t(m->cfg.n_layers));
  for (int i = 0; i < m->cfg.n_layers; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeights& l = m->layers[size_t(i)];
    l.attn_norm = view(shards, dir, p + "input_layernorm.weight");
    l.wq = view(shards, dir, p + "self_attn.q_proj.weight");
    l.wk = view(shards, dir, p + "self_attn.k_proj.weight");
    l.wv = view(shards, dir, p + "self_attn.v_proj.weight");
    l.wo = view(shards, dir, p + "self_attn.o_proj.weight");
    l.ffn_norm = view(shards, dir, p + "post_attention_layernorm.weight");
    l.w_gate = view(shards, dir, p + "mlp.gate_proj.weight");
    l.w_up = view(shards, dir, p + "mlp.up_proj.weight");
    l.w_down = view(shards, dir, p + "mlp.down_proj.weight");
  }
  for (auto& [name, f] : shards.files) m->maps.push_back(f);

  const std::string sp = dir + "/tokenizer.model";
  if (!exists(sp))
    throw ModelError(dir + ": no tokenizer.model (a SentencePiece tokenizer is required)");
  m->tokenizer.sp_model_path = sp;
  Config c(cj, cfg_file);
  m->tokenizer.bos_id = c.get_int("bos_token_id", 1);
  m->tokenizer.eos_id = j_eos(cj, m->tokenizer.eos_id);
  m->tokenizer.pad_id = c.get_int("pad_token_id", -1);
  for (int32_t id : {m->tokenizer.bos_id, m->tokenizer.eos_id, m->tokenizer.pad_id})
    if (id < -1 || id >= m->cfg.vocab_size)
      throw ModelError(cfg_file + ": special token id " + std::to_string(id) +
                       " is outside the vocabulary");
  read_tokenizer_config(dir, m->tokenizer);
  m->generation = read_generation(dir);
  return m;
}

}  // namespace lmstream
