// VocabTokenizer: the embedded vocabulary straight into the tables (see vocab_tokenizer.h).
#include "tokenizer/vocab_tokenizer.h"

namespace lmstream {

VocabTokenizer::VocabTokenizer(const TokenizerSpec& spec) {
  init("embedded tokenizer vocabulary", spec.tokens, spec.scores, spec.types, spec);
}

}  // namespace lmstream
