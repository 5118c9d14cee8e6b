// libFuzzer target for the event-stream decoder that `lmstream invoke` runs on server bytes.
// The first input byte picks the chunk size the rest is fed in. Checks: no crash or sanitizer
// report on any input, and every message the decoder accepts re-encodes to exactly the bytes it
// was decoded from (so accepted messages are well-formed and round-trip).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "aws/eventstream.h"

using lmstream::eventstream::DecodeError;
using lmstream::eventstream::Decoder;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 64;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  Decoder decoder;
  std::string reencoded;
  try {
    for (size_t at = 0; at < input.size(); at += chunk) {
      decoder.feed(input.substr(at, chunk));
      while (auto message = decoder.next()) {
        reencoded += lmstream::eventstream::encode(*message);
      }
    }
    decoder.finish();
  } catch (const DecodeError&) {
    // Rejected input: fine, as long as what was accepted before is consistent (checked below).
  }
  if (input.substr(0, reencoded.size()) != reencoded) std::abort();
  return 0;
}
