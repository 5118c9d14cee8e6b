// Writes event-stream bytes made by our encoder for tests/test_eventstream_botocore.py, which
// decodes them with botocore's own parser. Runs only when LMSTREAM_EVENTSTREAM_FIXTURE_DIR names a
// directory (the Python test sets it and runs just this test); skipped otherwise.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "aws/eventstream.h"

namespace lmstream::eventstream {
namespace {

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

TEST(BotocoreFixture, WriteEventStream) {
  const char* dir = std::getenv("LMSTREAM_EVENTSTREAM_FIXTURE_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "only run by tests/test_eventstream_botocore.py";

  // Payloads a TGI or LMI stream carries, plus edge cases: empty, binary, a split UTF-8 char,
  // and one large part.
  std::vector<std::string> payloads = {
      "data:{\"token\":{\"id\":1,\"text\":\" Hello\",\"logprob\":0.0,\"special\":false}}\n\n",
      "",
      std::string("\0\x01\xff\xfe binary", 11),
      "{\"generated_text\": \"caf\xc3",
      "\xa9\"}",
      std::string(300000, 'x'),
  };
  nlohmann::json manifest = nlohmann::json::array();
  std::string stream;
  for (const std::string& p : payloads) {
    stream += encode_payload_part(p);
    manifest.push_back({{"kind", "PayloadPart"}, {"payload_hex", to_hex(p)}});
  }
  stream +=
      encode_model_stream_error("Engine failed mid-stream: \"boom\" \xe2\x9c\x97", "StreamBroken");
  manifest.push_back({{"kind", "ModelStreamError"},
                      {"message", "Engine failed mid-stream: \"boom\" \xe2\x9c\x97"},
                      {"error_code", "StreamBroken"}});

  const std::string base(dir);
  std::ofstream(base + "/stream.bin", std::ios::binary) << stream;
  std::ofstream(base + "/manifest.json") << manifest.dump(2);
  std::ofstream(base + "/internal_failure.bin", std::ios::binary)
      << encode_payload_part("partial") << encode_exception("InternalStreamFailure", "oops", "");
  SUCCEED();
}

}  // namespace
}  // namespace lmstream::eventstream
