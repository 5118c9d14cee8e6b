// Shared base of both tokenizers: the per-token tables (piece, output bytes, type), validation of
// the vocabulary, the BPE encoder over it, and the list of special-token texts for
// parse_special. Subclasses only decide how encode_plain runs.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/bpe_model.h"
#include "tokenizer/tokenizer.h"

namespace lmstream {

class TableTokenizer : public Tokenizer {
 public:
  const std::string& token_bytes(int32_t id) const override;
  const std::string& piece(int32_t id) const override;
  TokenType type(int32_t id) const override;
  int32_t n_vocab() const override { return static_cast<int32_t>(pieces_.size()); }

  // SentencePiece BPE over this vocabulary, with or without the dummy prefix (text after a
  // special token in parse_special mode has none).
  std::vector<int32_t> encode_segment(std::string_view text, bool dummy_prefix) const {
    return bpe_->encode(text, dummy_prefix);
  }

  // Literal texts of control/unknown tokens with their ids, longest first.
  const std::vector<std::pair<std::string, int32_t>>& special_texts() const { return specials_; }

 protected:
  // Validates and stores the vocabulary (throws ModelError naming `source` on a bad one) and
  // takes bos/eos/unk/add_space_prefix from spec. Called once by the subclass constructor.
  void init(std::string source, std::vector<std::string> pieces, std::vector<float> scores,
            std::vector<TokenType> types, const TokenizerSpec& spec);

 private:
  void check_id(int32_t id) const;

  std::vector<std::string> pieces_;
  std::vector<std::string> bytes_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  std::unique_ptr<BpeModel> bpe_;
  std::vector<std::pair<std::string, int32_t>> specials_;
};

}  // namespace lmstream
