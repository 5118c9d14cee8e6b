// SentencePieceTokenizer (see sp_tokenizer.h).
#include "tokenizer/sp_tokenizer.h"

namespace lmstream {

SentencePieceTokenizer::SentencePieceTokenizer(const TokenizerSpec& spec) {
  const auto status = sp_.Load(spec.sp_model_path);
  if (!status.ok())
    throw ModelError(spec.sp_model_path +
                     ": cannot load SentencePiece model: " + status.ToString());
  const int n = sp_.GetPieceSize();
  std::vector<std::string> pieces(size_t(n > 0 ? n : 0));
  std::vector<float> scores(pieces.size());
  std::vector<TokenType> types(pieces.size());
  for (int i = 0; i < n; ++i) {
    pieces[size_t(i)] = sp_.IdToPiece(i);
    scores[size_t(i)] = sp_.GetScore(i);
    types[size_t(i)] = sp_.IsControl(i)   ? TokenType::kControl
                       : sp_.IsUnknown(i) ? TokenType::kUnknown
                       : sp_.IsByte(i)    ? TokenType::kByte
                       : sp_.IsUnused(i)  ? TokenType::kUnused
                                          : TokenType::kNormal;
  }
  init(spec.sp_model_path, std::move(pieces), std::move(scores), std::move(types), spec);
  // The processor's normalizer decides whether it adds the dummy prefix; tell the truth about
  // it whatever the spec says, so decode strips exactly what encode added.
  const std::vector<int32_t> with = encode_segment("a", true), without = encode_segment("a", false);
  if (with != without) add_space_prefix_ = encode_plain("a") == with;
}

std::vector<int32_t> SentencePieceTokenizer::encode_plain(std::string_view text) const {
  const std::vector<int> ids = sp_.EncodeAsIds(text);
  return std::vector<int32_t>(ids.begin(), ids.end());
}

}  // namespace lmstream
