// llama.cpp's per-tensor type rules (see rules.h), restated for the Llama architecture: no
// experts, no Falcon, no imatrix. Layer counters come from the tensor's blk.N index, which equals
// llama.cpp's running counters for files in layer order (as every converted Llama file is).
#include "quant/rules.h"

#include <cctype>
#include <stdexcept>

namespace lmstream::quant {
namespace {

struct FtInfo {
  FileType ft;
  const char* name;
  DType base;
};
constexpr FtInfo kFileTypes[] = {
    {FileType::kQ4_K_M, "Q4_K_M", kQ4_K}, {FileType::kQ4_K_S, "Q4_K_S", kQ4_K},
    {FileType::kQ5_K_M, "Q5_K_M", kQ5_K}, {FileType::kQ5_K_S, "Q5_K_S", kQ5_K},
    {FileType::kQ6_K, "Q6_K", kQ6_K},     {FileType::kQ3_K_M, "Q3_K_M", kQ3_K},
    {FileType::kQ2_K, "Q2_K", kQ2_K},     {FileType::kQ8_0, "Q8_0", kQ8_0},
    {FileType::kQ4_0, "Q4_0", kQ4_0},     {FileType::kQ5_0, "Q5_0", kQ5_0},
};

const FtInfo& info(FileType ft) {
  for (const FtInfo& i : kFileTypes)
    if (i.ft == ft) return i;
  throw std::invalid_argument("unknown file type " + std::to_string(uint32_t(ft)));
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

enum class Kind {
  kOther,
  kTokenEmbd,
  kOutput,
  kAttnQ,
  kAttnK,
  kAttnV,
  kAttnOut,
  kGate,
  kUp,
  kDown
};

Kind kind_of(std::string_view name) {
  if (name == "token_embd.weight") return Kind::kTokenEmbd;
  if (name == "output.weight") return Kind::kOutput;
  if (ends_with(name, ".attn_q.weight")) return Kind::kAttnQ;
  if (ends_with(name, ".attn_k.weight")) return Kind::kAttnK;
  if (ends_with(name, ".attn_v.weight")) return Kind::kAttnV;
  if (ends_with(name, ".attn_output.weight")) return Kind::kAttnOut;
  if (ends_with(name, ".ffn_gate.weight")) return Kind::kGate;
  if (ends_with(name, ".ffn_up.weight")) return Kind::kUp;
  if (ends_with(name, ".ffn_down.weight")) return Kind::kDown;
  return Kind::kOther;
}

// The N of "blk.N.", range-checked.
int layer_of(const std::string& name, int n_layer) {
  if (name.rfind("blk.", 0) != 0)
    throw std::invalid_argument("tensor '" + name + "': no blk.N. layer prefix");
  size_t i = 4;
  int v = 0;
  bool any = false;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && v < 1000000)
    v = v * 10 + (name[i++] - '0'), any = true;
  if (!any || i >= name.size() || name[i] != '.')
    throw std::invalid_argument("tensor '" + name + "': no blk.N. layer prefix");
  if (v >= n_layer)
    throw std::invalid_argument("tensor '" + name + "': layer " + std::to_string(v) +
                                " outside [0, " + std::to_string(n_layer) + ")");
  return v;
}

// tensor_type_fallback: the chosen type does not tile the row.
DType fallback(DType t, int64_t cols) {
  const int qk = ggml_block_size(t);
  if (qk > 0 && cols % qk == 0) return t;
  DType r = t;
  if (t == kQ2_K || t == kQ3_K)
    r = kQ4_0;
  else if (t == kQ4_K)
    r = kQ5_0;
  else if (t == kQ5_K)
    r = kQ5_1;
  else if (t == kQ6_K)
    r = kQ8_0;
  const int qr = ggml_block_size(r);
  if (qr <= 0 || cols % qr != 0) r = kF16;
  return r;
}

}  // namespace

std::optional<FileType> file_type_from_name(std::string_view name) {
  for (const FtInfo& i : kFileTypes) {
    std::string_view n = i.name;
    if (n.size() != name.size()) continue;
    bool eq = true;
    for (size_t k = 0; k < n.size() && eq; ++k)
      eq = std::toupper(static_cast<unsigned char>(name[k])) == n[k];
    if (eq) return i.ft;
  }
  return std::nullopt;
}

const char* file_type_name(FileType ft) { return info(ft).name; }

std::vector<FileType> all_file_types() {
  std::vector<FileType> v;
  for (const FtInfo& i : kFileTypes) v.push_back(i.ft);
  return v;
}

DType file_type_base(FileType ft) { return info(ft).base; }

const char* ggml_type_name(DType t) {
  switch (uint32_t(t)) {
    case 0:
      return "f32";
    case 1:
      return "f16";
    case 2:
      return "q4_0";
    case 3:
      return "q4_1";
    case 6:
      return "q5_0";
    case 7:
      return "q5_1";
    case 8:
      return "q8_0";
    case 10:
      return "q2_K";
    case 11:
      return "q3_K";
    case 12:
      return "q4_K";
    case 13:
      return "q5_K";
    case 14:
      return "q6_K";
    case 30:
      return "bf16";
    default:
      return "unknown";
  }
}

int ggml_block_size(DType t) {
  switch (uint32_t(t)) {
    case 0:
    case 1:
    case 30:
      return 1;
    case 2:
    case 3:
    case 6:
    case 7:
    case 8:
      return 32;
    case 10:
    case 11:
    case 12:
    case 13:
    case 14:
      return 256;
    default:
      return 0;
  }
}

bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

DType tensor_type(const TensorDesc& t, const ModelShape& m, FileType ft) {
  // tensor_allows_quantization: 2-D "...weight" tensors that are not norms.
  if (t.n_dims < 2 || !ends_with(t.name, "weight") ||
      t.name.find("_norm.weight") != std::string::npos)
    return kF32;
  const DType base = file_type_base(ft);
  DType ty = base;
  const Kind k = kind_of(t.name);
  const int n_gqa = m.n_head_kv > 0 ? m.n_head / m.n_head_kv : 1;
  const bool is_70b = m.n_layer == 80 && m.n_head != m.n_head_kv;  // LLM_TYPE_70B
  if (k == Kind::kOutput || (m.tied && k == Kind::kTokenEmbd)) {
    if (t.cols % ggml_block_size(base) != 0)
      ty = kQ8_0;
    else if (base != kQ8_0)
      ty = kQ6_K;
  } else if (k == Kind::kAttnV) {
    const int i = layer_of(t.name, m.n_layer), n = m.n_layer;
    if (ft == FileType::kQ2_K)
      ty = n_gqa >= 4 ? kQ4_K : kQ3_K;
    else if (ft == FileType::kQ3_K_M)
      ty = i < 2 ? kQ5_K : kQ4_K;
    else if ((ft == FileType::kQ4_K_M || ft == FileType::kQ5_K_M) && use_more_bits(i, n))
      ty = kQ6_K;
    else if (ft == FileType::kQ4_K_S && i < 4)
      ty = kQ5_K;
    if (is_70b && (ty == kQ3_K || ty == kQ4_K)) ty = kQ5_K;
  } else if (k == Kind::kDown) {
    const int i = layer_of(t.name, m.n_layer), n = m.n_layer;
    if (ft == FileType::kQ2_K)
      ty = kQ3_K;
    else if (ft == FileType::kQ3_K_M)
      ty = i < n / 16 ? kQ5_K : kQ4_K;
    else if (ft == FileType::kQ4_K_M) {
      if (use_more_bits(i, n)) ty = kQ6_K;
    } else if (ft == FileType::kQ5_K_M && use_more_bits(i, n))
      ty = kQ6_K;
    else if (ft == FileType::kQ4_K_S && i < n / 8)
      ty = kQ5_K;
  } else if (k == Kind::kAttnOut) {
    if (ft == FileType::kQ2_K)
      ty = kQ3_K;
    else if (ft == FileType::kQ3_K_M)
      ty = kQ4_K;
  } else if (k == Kind::kAttnQ || k == Kind::kAttnK || k == Kind::kGate || k == Kind::kUp) {
    layer_of(t.name, m.n_layer);  // validates the index
  }
  return fallback(ty, t.cols);
}

}  // namespace lmstream::quant
