// libFuzzer target: GGUF container parsing plus the Llama loader's metadata/tensor checks, from
// memory. Any input must end in success or a ModelError, never a crash.
#include <cstddef>
#include <cstdint>

#include "model/loader_internal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto m = lmstream::load_gguf_from_memory(data, size, "<fuzz>");
    lmstream::validate_shapes(*m, "<fuzz>");
  } catch (const lmstream::ModelError&) {
  }
  return 0;
}
