// SentencePiece's BPE encoder (src/bpe_model.cc + the identity normalizer of normalizer.cc) over a
// vocabulary table: dummy prefix, ' ' -> U+2581, malformed UTF-8 bytes -> U+FFFD, split into
// characters (user-defined pieces kept whole), merge the best-scoring adjacent pair whose
// concatenation is a normal/user-defined/unused piece (ties: leftmost), unused pieces split back,
// pieces outside the vocabulary as <0xXX> byte tokens (or unk without byte tokens).
// Holds no tokenizer policy (BOS, special-token parsing): that is Tokenizer's.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/model.h"

namespace lmstream {

class BpeModel {
 public:
  // The vectors must outlive this object and stay unchanged: lookups point into them.
  // scores and types have pieces.size() entries; unk_id is a valid index.
  BpeModel(const std::vector<std::string>& pieces, const std::vector<float>& scores,
           const std::vector<TokenType>& types, int32_t unk_id);
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Token ids of text; dummy_prefix prepends U+2581 (SentencePiece's add_dummy_prefix) when text
  // is not empty. Throws std::length_error for inputs of 2 GiB and more.
  std::vector<int32_t> encode(std::string_view text, bool dummy_prefix) const;

  // The normalized form the merges run on (exposed for tests).
  std::string normalize(std::string_view text, bool dummy_prefix) const;

  bool byte_fallback() const { return byte_fallback_; }

 private:
  int32_t find_mergeable(std::string_view piece) const;  // normal/user-defined/unused, or -1
  int32_t find_any(std::string_view piece) const;        // any piece, or -1
  size_t match_user_defined(std::string_view s) const;   // longest user-defined prefix, or 0
  void emit(std::string_view piece, std::vector<int32_t>& out) const;

  const std::vector<float>& scores_;
  const std::vector<TokenType>& types_;
  int32_t unk_id_;
  std::unordered_map<std::string_view, int32_t> mergeable_;  // SentencePiece's pieces_
  std::unordered_map<std::string_view, int32_t> reserved_;   // control, unknown, byte
  std::unordered_map<std::string_view, int32_t> user_defined_;
  std::vector<size_t> user_defined_lengths_;  // distinct lengths, longest first
  std::array<int32_t, 256> byte_ids_{};
  bool byte_fallback_ = false;
  bool has_unused_ = false;
};

}  // namespace lmstream
