// libFuzzer target: safetensors header parsing and validation, from memory.
#include <cstddef>
#include <cstdint>

#include "model/model.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lmstream::parse_safetensors(data, size, "<fuzz>");
  } catch (const lmstream::ModelError&) {
  }
  return 0;
}
