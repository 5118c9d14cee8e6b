// StreamDecoder: SentencePiece's DecodeIds (sentencepiece_processor.cc Decode) done one token at
// a time. Runs of byte tokens are held until they form whole UTF-8 characters; a byte that can no
// longer become part of one is emitted as U+FFFD, as is an unfinished character when a non-byte
// token (or finish) ends the run. The first non-byte token loses its leading U+2581 once.
#include <string_view>

#include "base/utf8.h"
#include "tokenizer/tokenizer.h"

namespace lmstream {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";

// Moves every decided character of pending to out. With final, nothing is held back.
void drain(std::string& pending, std::string& out, bool final) {
  size_t i = 0;
  while (i < pending.size()) {
    std::string_view rest = std::string_view(pending).substr(i);
    if (size_t n = utf8::valid_char_len(rest); n > 0) {
      out.append(rest.substr(0, n));
      i += n;
    } else if (!final && utf8::is_incomplete_prefix(rest)) {
      break;
    } else {
      out += utf8::kReplacement;
      i += 1;
    }
  }
  pending.erase(0, i);
}

}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool strip_leading_space, bool skip_special)
    : tok_(tok),
      strip_leading_space_(strip_leading_space && tok.add_space_prefix()),
      skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  const TokenType type = tok_.type(id);  // throws std::out_of_range for a bad id
  std::string out;
  if (type == TokenType::kByte) {
    pending_ += tok_.token_bytes(id);
    at_start_ = false;  // a byte run always yields text, so no later space is the first
    drain(pending_, out, false);
    return out;
  }
  drain(pending_, out, true);  // any other token ends the byte run
  if (type == TokenType::kControl || type == TokenType::kUnknown) {
    if (!skip_special_ && !tok_.piece(id).empty()) {
      out += tok_.piece(id);
      at_start_ = false;
    }
    return out;
  }
  const std::string& bytes = tok_.token_bytes(id);
  if (at_start_ && strip_leading_space_ && tok_.piece(id).starts_with(kSpaceSymbol) &&
      !bytes.empty()) {
    out.append(bytes, 1);  // U+2581 became the single byte ' '
  } else {
    out += bytes;
  }
  at_start_ = false;
  return out;
}

std::string StreamDecoder::finish() {
  std::string out;
  drain(pending_, out, true);
  return out;
}

}  // namespace lmstream
