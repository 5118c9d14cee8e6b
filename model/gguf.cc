// GGUF parser (see gguf.h). Every count, length and offset is checked against the bytes that are
// actually there before anything is allocated, so hostile files fail with a clear ModelError.
#include "model/gguf.h"

#include <limits>
#include <unordered_set>

#include "model/byte_reader.h"

namespace lmstream {
namespace {

constexpr uint64_t kMaxTensors = 1u << 20;
constexpr uint64_t kMaxKv = 1u << 20;
constexpr int kMaxArrayDepth = 8;
constexpr uint64_t kMaxKeyLen = 1u << 16;

// ggml's names of the tensor types (ggml.h), for errors about types we do not load.
const char* ggml_type_label(uint32_t id) {
  static const char* const kNames[] = {"F32",
                                       "F16",
                                       "Q4_0",
                                       "Q4_1",
                                       "Q4_2 (removed)",
                                       "Q4_3 (removed)",
                                       "Q5_0",
                                       "Q5_1",
                                       "Q8_0",
                                       "Q8_1",
                                       "Q2_K",
                                       "Q3_K",
                                       "Q4_K",
                                       "Q5_K",
                                       "Q6_K",
                                       "Q8_K",
                                       "IQ2_XXS",
                                       "IQ2_XS",
                                       "IQ3_XXS",
                                       "IQ1_S",
                                       "IQ4_NL",
                                       "IQ3_S",
                                       "IQ2_S",
                                       "IQ4_XS",
                                       "I8",
                                       "I16",
                                       "I32",
                                       "I64",
                                       "F64",
                                       "IQ1_M",
                                       "BF16",
                                       "Q4_0_4_4 (removed)",
                                       "Q4_0_4_8 (removed)",
                                       "Q4_0_8_8 (removed)",
                                       "TQ1_0",
                                       "TQ2_0",
                                       "IQ4_NL_4_4 (removed)",
                                       "IQ4_NL_4_8 (removed)",
                                       "IQ4_NL_8_8 (removed)",
                                       "MXFP4",
                                       "NVFP4",
                                       "Q1_0",
                                       "Q2_0"};
  return id < sizeof kNames / sizeof kNames[0] ? kNames[id] : "unknown type";
}

size_t min_elem_bytes(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
      return 8;
    case GgufType::kString:
      return 8;
    case GgufType::kArray:
      return 12;
  }
  return 1;
}

bool valid_type(uint32_t t) { return t <= 12; }

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& name) : r_(data, size, name) {}

  GgufFile run() {
    GgufFile g;
    r_.need(4, "the GGUF magic");
    char magic[4];
    for (char& c : magic) c = char(r_.read<uint8_t>("magic"));
    if (std::string(magic, 4) != "GGUF") r_.fail("not a GGUF file (bad magic)");
    g.version = r_.read<uint32_t>("version");
    if (g.version != 2 && g.version != 3)
      r_.fail("unsupported GGUF version " + std::to_string(g.version) + " (supported: 2, 3)");
    uint64_t n_tensors = r_.read<uint64_t>("tensor count");
    uint64_t n_kv = r_.read<uint64_t>("metadata count");
    if (n_tensors > kMaxTensors) r_.fail("absurd tensor count " + std::to_string(n_tensors));
    if (n_kv > kMaxKv) r_.fail("absurd metadata count " + std::to_string(n_kv));
    if (n_tensors > r_.remaining() / 24 || n_kv > r_.remaining() / 13)
      r_.fail("truncated file: " + std::to_string(n_tensors) + " tensors and " +
              std::to_string(n_kv) + " metadata entries cannot fit in the remaining " +
              std::to_string(r_.remaining()) + " bytes");

    for (uint64_t k = 0; k < n_kv; ++k) {
      std::string key = read_key("metadata key");
      uint32_t t = r_.read<uint32_t>("metadata value type");
      if (!valid_type(t))
        r_.fail("metadata key '" + key + "' has unknown value type " + std::to_string(t));
      GgufValue v = read_value(GgufType(t), 0, key);
      if (!g.kv.emplace(key, std::move(v)).second) r_.fail("duplicate metadata key '" + key + "'");
    }

    if (const GgufValue* a = g.find("general.alignment")) {
      if (a->type != GgufType::kU32 && a->type != GgufType::kI32 && a->type != GgufType::kU64)
        r_.fail("general.alignment has type " + std::string(gguf_type_name(a->type)) +
                ", expected uint32");
      uint64_t al = uint64_t(a->i);
      if (al == 0 || al > (1u << 20) || (al & (al - 1)) != 0)
        r_.fail("general.alignment " + std::to_string(a->i) + " is not a power of two up to 1 MiB");
      g.alignment = uint32_t(al);
    }

    std::unordered_set<std::string> names;
    g.tensors.reserve(size_t(n_tensors));
    for (uint64_t k = 0; k < n_tensors; ++k) {
      GgufTensorInfo ti;
      ti.name = read_key("tensor name");
      if (!names.insert(ti.name).second) r_.fail("duplicate tensor '" + ti.name + "'");
      uint32_t n_dims = r_.read<uint32_t>("tensor dimension count");
      if (n_dims == 0 || n_dims > 4)
        r_.fail("tensor '" + ti.name + "' has " + std::to_string(n_dims) +
                " dimensions (1 to 4 allowed)");
      uint64_t nelem = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        int64_t ne = r_.read<int64_t>("tensor dimension");
        if (ne < 0 || ne > (int64_t(1) << 40))
          r_.fail("tensor '" + ti.name + "' has invalid dimension " + std::to_string(ne));
        if (ne != 0 && nelem > (uint64_t(1) << 50) / uint64_t(ne))
          r_.fail("tensor '" + ti.name + "' has too many elements");
        nelem *= uint64_t(ne);
        ti.ne.push_back(ne);
      }
      uint32_t type = r_.read<uint32_t>("tensor type");
      std::optional<DType> dt = dtype_from_ggml(type);
      if (!dt)
        r_.fail("tensor '" + ti.name + "' has unsupported tensor type " + std::to_string(type) +
                " (" + ggml_type_label(type) +
                "); supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, "
                "Q5_K, Q6_K");
      ti.type = *dt;
      if (ti.ne[0] % dtype_block_elems(ti.type) != 0)
        r_.fail("tensor '" + ti.name + "' of type " + dtype_name(ti.type) + " has row length " +
                std::to_string(ti.ne[0]) + ", not a multiple of " +
                std::to_string(dtype_block_elems(ti.type)));
      ti.nbytes = nelem / uint64_t(dtype_block_elems(ti.type)) * dtype_block_bytes(ti.type);
      ti.offset = r_.read<uint64_t>("tensor data offset");
      if (ti.offset % g.alignment != 0)
        r_.fail("tensor '" + ti.name + "' data offset " + std::to_string(ti.offset) +
                " is not a multiple of the alignment " + std::to_string(g.alignment));
      g.tensors.push_back(std::move(ti));
    }

    uint64_t pos = r_.pos();
    g.data_offset = (pos + g.alignment - 1) / g.alignment * g.alignment;
    uint64_t avail = g.data_offset <= r_.size() ? r_.size() - g.data_offset : 0;
    for (const GgufTensorInfo& ti : g.tensors) {
      if (ti.offset > avail || ti.nbytes > avail - ti.offset)
        r_.fail("truncated file or tensor offset out of range: tensor '" + ti.name +
                "' needs bytes [" + std::to_string(ti.offset) + ", " +
                std::to_string(ti.offset + ti.nbytes) + ") of the data section, which has " +
                std::to_string(avail) + " bytes");
    }
    return g;
  }

 private:
  std::string read_key(const char* what) {
    std::string s = r_.read_string(what);
    if (s.size() > kMaxKeyLen)
      r_.fail(std::string(what) + " too long (" + std::to_string(s.size()) + " bytes)");
    return s;
  }

  GgufValue read_value(GgufType t, int depth, const std::string& key) {
    GgufValue v;
    v.type = t;
    switch (t) {
      case GgufType::kU8:
        v.i = r_.read<uint8_t>("metadata value");
        break;
      case GgufType::kI8:
        v.i = r_.read<int8_t>("metadata value");
        break;
      case GgufType::kU16:
        v.i = r_.read<uint16_t>("metadata value");
        break;
      case GgufType::kI16:
        v.i = r_.read<int16_t>("metadata value");
        break;
      case GgufType::kU32:
        v.i = r_.read<uint32_t>("metadata value");
        break;
      case GgufType::kI32:
        v.i = r_.read<int32_t>("metadata value");
        break;
      case GgufType::kU64:
        v.i = int64_t(r_.read<uint64_t>("metadata value"));
        break;
      case GgufType::kI64:
        v.i = r_.read<int64_t>("metadata value");
        break;
      case GgufType::kBool: {
        uint8_t b = r_.read<uint8_t>("metadata value");
        if (b > 1)
          r_.fail("metadata key '" + key + "' has invalid bool value " + std::to_string(b));
        v.i = b;
        break;
      }
      case GgufType::kF32:
        v.f = r_.read<float>("metadata value");
        break;
      case GgufType::kF64:
        v.f = r_.read<double>("metadata value");
        break;
      case GgufType::kString:
        v.s = r_.read_string("metadata string");
        break;
      case GgufType::kArray:
        read_array(v, depth, key);
        break;
    }
    return v;
  }

  void read_array(GgufValue& v, int depth, const std::string& key) {
    if (depth >= kMaxArrayDepth) r_.fail("metadata key '" + key + "' nests arrays too deeply");
    uint32_t et = r_.read<uint32_t>("array element type");
    if (!valid_type(et))
      r_.fail("metadata key '" + key + "' has array of unknown type " + std::to_string(et));
    v.elem_type = GgufType(et);
    uint64_t n = r_.read<uint64_t>("array length");
    if (n > r_.remaining() / min_elem_bytes(v.elem_type))
      r_.fail("truncated file: array '" + key + "' of " + std::to_string(n) +
              " elements runs past the end of the file");
    switch (v.elem_type) {
      case GgufType::kString:
        v.strs.reserve(size_t(n));
        for (uint64_t k = 0; k < n; ++k) v.strs.push_back(r_.read_string("metadata string"));
        break;
      case GgufType::kArray:
        for (uint64_t k = 0; k < n; ++k)
          v.arrs.push_back(read_value(GgufType::kArray, depth + 1, key));
        break;
      case GgufType::kF32:
      case GgufType::kF64:
        v.floats.reserve(size_t(n));
        for (uint64_t k = 0; k < n; ++k) v.floats.push_back(read_value(v.elem_type, depth, key).f);
        break;
      default:
        v.ints.reserve(size_t(n));
        for (uint64_t k = 0; k < n; ++k) v.ints.push_back(read_value(v.elem_type, depth, key).i);
        break;
    }
  }

  ByteReader r_;
};

}  // namespace

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv.find(key);
  return it == kv.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  for (const GgufTensorInfo& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::kU8:
      return "uint8";
    case GgufType::kI8:
      return "int8";
    case GgufType::kU16:
      return "uint16";
    case GgufType::kI16:
      return "int16";
    case GgufType::kU32:
      return "uint32";
    case GgufType::kI32:
      return "int32";
    case GgufType::kF32:
      return "float32";
    case GgufType::kBool:
      return "bool";
    case GgufType::kString:
      return "string";
    case GgufType::kArray:
      return "array";
    case GgufType::kU64:
      return "uint64";
    case GgufType::kI64:
      return "int64";
    case GgufType::kF64:
      return "float64";
  }
  return "?";
}

GgufFile parse_gguf(const uint8_t* data, size_t size, const std::string& name) {
  return Parser(data, size, name).run();
}

}  // namespace lmstream
