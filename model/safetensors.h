// safetensors header parser: u64 header length, JSON header, tensor byte ranges checked against
// the buffer. Parses from memory so the fuzzer needs no files.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace lmstream {

struct SafetensorsEntry {
  std::string dtype;          // as written ("F16", "I8", ...)
  std::optional<DType> type;  // set for F32 / F16 / BF16
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // absolute offsets in the file
};

struct SafetensorsHeader {
  uint64_t data_start = 0;  // 8 + header length
  std::map<std::string, SafetensorsEntry> tensors;
};

constexpr uint64_t kMaxSafetensorsHeader = 100u << 20;

// Throws ModelError("<name>: ...") on any malformed header or out-of-range tensor.
SafetensorsHeader parse_safetensors(const uint8_t* data, size_t size, const std::string& name);

}  // namespace lmstream
