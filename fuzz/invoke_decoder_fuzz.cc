// libFuzzer target for `lmstream invoke`'s response decoders (client/stream_decoders.h). The first
// byte picks the decoder (SSE, JSON values, LMI json, auto; optionally inside an event stream), the
// second the chunk size; the body is decoded whole and in chunks. Checks: no crash, only the
// decoders' own exceptions, and the same outcome (and text, when it succeeds) however it is
// chunked.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "client/stream_decoders.h"

namespace {

using namespace lmstream::client;

std::unique_ptr<TextDecoder> make(uint8_t sel) {
  static const Format kFormats[] = {Format::kSse, Format::kJsonValues, Format::kLmiJson,
                                    Format::kAuto};
  static const char* kTypes[] = {"", "application/json", "text/event-stream",
                                 "application/jsonlines"};
  auto inner = make_decoder(kFormats[sel & 3], kTypes[(sel >> 2) & 3]);
  if (sel & 0x10) return std::make_unique<EventStreamDecoder>(std::move(inner));
  return inner;
}

// Decodes `body` in chunks of `chunk` bytes: true and the text on success, false on a decode error.
bool decode(uint8_t sel, std::string_view body, size_t chunk, std::string* text) {
  auto d = make(sel);
  try {
    for (size_t i = 0; i < body.size(); i += chunk) d->feed(body.substr(i, chunk), *text);
    d->finish(*text);
    return true;
  } catch (const StreamError&) {
    return false;
  } catch (const FormatError&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint8_t sel = data[0];
  size_t chunk = size_t(data[1] % 16) + 1;
  std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::string whole, parts;
  bool ok_whole = decode(sel, body, body.size() + 1, &whole);
  bool ok_parts = decode(sel, body, chunk, &parts);
  if (ok_whole != ok_parts) std::abort();
  if (ok_whole && whole != parts) std::abort();
  return 0;
}
