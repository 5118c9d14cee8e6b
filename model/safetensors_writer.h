// safetensors writer: header JSON (padded with spaces to 8 bytes) followed by the tensors' bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lmstream {

struct SafetensorsOut {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16"
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
  std::function<void(uint8_t* dst)> fill;  // writes exactly nbytes
};

// Writes one file. Throws ModelError on I/O failure.
void write_safetensors(const std::string& path, const std::vector<SafetensorsOut>& tensors);

}  // namespace lmstream
