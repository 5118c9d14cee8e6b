// GGUF v2/v3 container parser: header, metadata key/values (all value types, nested arrays),
// tensor infos and the data section. Parses from memory so it can be fuzzed without files.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace lmstream {

enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12
};

struct GgufValue {
  GgufType type = GgufType::kU8;
  // Scalars: integers and bools in i (u64 bit-cast), floats in f, strings in s.
  int64_t i = 0;
  double f = 0;
  std::string s;
  // Arrays: elem_type and exactly one of these filled, by element kind.
  GgufType elem_type = GgufType::kU8;
  std::vector<int64_t> ints;      // integer and bool elements (u64 bit-cast)
  std::vector<double> floats;     // f32 / f64 elements
  std::vector<std::string> strs;  // string elements
  std::vector<GgufValue> arrs;    // nested arrays
  size_t array_size() const { return ints.size() + floats.size() + strs.size() + arrs.size(); }
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ne[0] = row length
  DType type = DType::F32;
  uint64_t offset = 0;  // relative to the data section
  uint64_t nbytes = 0;
};

struct GgufFile {
  uint32_t version = 0;
  uint32_t alignment = 32;
  std::map<std::string, GgufValue> kv;
  std::vector<GgufTensorInfo> tensors;
  uint64_t data_offset = 0;  // absolute offset of the data section

  const GgufValue* find(const std::string& key) const;
  const GgufTensorInfo* find_tensor(const std::string& name) const;
};

// Parses and validates the whole container: every tensor's bytes lie inside [data, data+size).
// name prefixes error messages. Throws ModelError.
GgufFile parse_gguf(const uint8_t* data, size_t size, const std::string& name);

const char* gguf_type_name(GgufType t);

}  // namespace lmstream
