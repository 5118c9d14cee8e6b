// Minimal SentencePiece ModelProto codec (libsentencepiece-dev ships no .pb.h): encodes a BPE
// model with byte fallback from a piece list, decodes the piece list of any model, and provides
// the small built-in English vocabulary used by generated test models.
#pragma once

#include <string>
#include <vector>

#include "model/model.h"

namespace lmstream {

struct SpPiece {
  std::string piece;
  float score = 0;
  TokenType type = TokenType::kNormal;
};

// Serialized ModelProto: BPE, byte_fallback, unk/bos/eos = 0/1/2, no pad, identity normalizer,
// add_dummy_prefix on, remove_extra_whitespaces off.
std::string encode_sp_model(const std::vector<SpPiece>& pieces);
// Pieces of a serialized ModelProto. Throws ModelError("<name>: ...") on malformed input.
std::vector<SpPiece> decode_sp_pieces(const std::string& bytes, const std::string& name);
// <unk>, <s>, </s>, <0x00>..<0xFF>, single characters, then common English words with their
// prefixes (so BPE merges can reach them), about 1000 pieces in all.
std::vector<SpPiece> builtin_sp_vocab();

}  // namespace lmstream
