// Vocabulary tables and their validation (see table_tokenizer.h).
#include "tokenizer/table_tokenizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string_view>

namespace lmstream {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";

// "<0xAB>" -> 0xAB, or -1 (SentencePiece's PieceToByte accepts exactly this form).
int parse_byte_piece(const std::string& p) {
  if (p.size() != 6 || p.compare(0, 3, "<0x") != 0 || p[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    char c = p[size_t(i)];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

std::string replace_space_symbol(const std::string& p) {
  std::string out;
  out.reserve(p.size());
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
      out += ' ';
      i += kSpaceSymbol.size();
    } else {
      out += p[i++];
    }
  }
  return out;
}

bool valid_type(TokenType t) {
  int v = static_cast<int>(t);
  return v >= static_cast<int>(TokenType::kNormal) && v <= static_cast<int>(TokenType::kByte);
}

}  // namespace

void TableTokenizer::init(std::string source, std::vector<std::string> pieces,
                          std::vector<float> scores, std::vector<TokenType> types,
                          const TokenizerSpec& spec) {
  auto fail = [&source](const std::string& what) { throw ModelError(source + ": " + what); };
  const size_t n = pieces.size();
  if (n == 0) fail("tokenizer vocabulary is empty");
  if (n > size_t(std::numeric_limits<int32_t>::max())) fail("tokenizer vocabulary too large");
  // Missing scores/types default as in llama.cpp (0 and NORMAL); a wrong count is an error.
  if (scores.empty()) scores.assign(n, 0.f);
  if (types.empty()) types.assign(n, TokenType::kNormal);
  if (scores.size() != n)
    fail("tokenizer has " + std::to_string(n) + " tokens but " + std::to_string(scores.size()) +
         " scores");
  if (types.size() != n)
    fail("tokenizer has " + std::to_string(n) + " tokens but " + std::to_string(types.size()) +
         " token types");
  for (size_t i = 0; i < n; ++i) {
    if (static_cast<int>(types[i]) == 0) types[i] = TokenType::kNormal;  // GGUF "undefined"
    if (!valid_type(types[i]))
      fail("token " + std::to_string(i) + " has invalid token type " +
           std::to_string(static_cast<int>(types[i])));
    if (std::isnan(scores[i])) scores[i] = -std::numeric_limits<float>::infinity();
  }
  auto check_special = [&](int32_t id, const char* name) {
    if (id < 0 || size_t(id) >= n)
      fail(std::string(name) + " id " + std::to_string(id) + " is outside the vocabulary of " +
           std::to_string(n) + " tokens");
  };
  check_special(spec.bos_id, "BOS");
  check_special(spec.eos_id, "EOS");
  check_special(spec.unk_id, "UNK");

  bytes_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    switch (types[i]) {
      case TokenType::kControl:
      case TokenType::kUnknown:
        break;  // no output text
      case TokenType::kByte: {
        int b = parse_byte_piece(pieces[i]);
        if (b < 0) fail("byte token " + std::to_string(i) + " is not of the form <0xXX>");
        bytes_[i] = std::string(1, static_cast<char>(b));
        break;
      }
      default:
        bytes_[i] = replace_space_symbol(pieces[i]);
    }
    if ((types[i] == TokenType::kControl || types[i] == TokenType::kUnknown) && !pieces[i].empty())
      specials_.emplace_back(pieces[i], static_cast<int32_t>(i));
  }
  std::stable_sort(specials_.begin(), specials_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  pieces_ = std::move(pieces);
  scores_ = std::move(scores);
  types_ = std::move(types);
  bos_ = spec.bos_id;
  eos_ = spec.eos_id;
  unk_ = spec.unk_id;
  add_space_prefix_ = spec.add_space_prefix;
  bpe_ = std::make_unique<BpeModel>(pieces_, scores_, types_, unk_);
}

void TableTokenizer::check_id(int32_t id) const {
  if (id < 0 || size_t(id) >= pieces_.size())
    throw std::out_of_range("token id " + std::to_string(id) + " is outside the vocabulary of " +
                            std::to_string(pieces_.size()) + " tokens");
}

const std::string& TableTokenizer::token_bytes(int32_t id) const {
  check_id(id);
  return bytes_[size_t(id)];
}

const std::string& TableTokenizer::piece(int32_t id) const {
  check_id(id);
  return pieces_[size_t(id)];
}

TokenType TableTokenizer::type(int32_t id) const {
  check_id(id);
  return types_[size_t(id)];
}

}  // namespace lmstream
