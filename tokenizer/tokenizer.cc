// Tokenizer's shared behaviour: encode with BOS and special-token parsing, decode (through the
// streaming decoder, so both always agree), and the factory picking an implementation.
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "tokenizer/sp_tokenizer.h"
#include "tokenizer/table_tokenizer.h"
#include "tokenizer/vocab_tokenizer.h"

namespace lmstream {
namespace {

// Control/unknown texts and ids, longest first, for tokenizers that do not keep the list.
std::vector<std::pair<std::string, int32_t>> collect_specials(const Tokenizer& tok) {
  std::vector<std::pair<std::string, int32_t>> out;
  for (int32_t id = 0; id < tok.n_vocab(); ++id)
    if (tok.is_special(id) && !tok.piece(id).empty()) out.emplace_back(tok.piece(id), id);
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return out;
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos,
                                       bool parse_special) const {
  std::vector<int32_t> out;
  if (add_bos) out.push_back(bos_);
  auto append = [&out](const std::vector<int32_t>& v) {
    out.insert(out.end(), v.begin(), v.end());
  };
  if (!parse_special) {
    append(encode_plain(text));
    return out;
  }

  const auto* table = dynamic_cast<const TableTokenizer*>(this);
  std::vector<std::pair<std::string, int32_t>> own;
  if (!table) own = collect_specials(*this);
  const auto& specials = table ? table->special_texts() : own;

  // Each piece of text between special tokens on its own, dummy prefix included.
  auto encode_text = [&](std::string_view segment) {
    if (!segment.empty()) append(encode_plain(segment));
  };

  // next[j]: the next occurrence of specials[j] at or after the cursor (npos: none left).
  constexpr size_t kUnknown = std::string_view::npos - 1;
  std::vector<size_t> next(specials.size(), kUnknown);
  size_t cursor = 0;
  while (true) {
    size_t best_pos = std::string_view::npos, best = 0;
    for (size_t j = 0; j < specials.size(); ++j) {
      if (next[j] == kUnknown || (next[j] != std::string_view::npos && next[j] < cursor))
        next[j] = text.find(specials[j].first, cursor);
      if (next[j] < best_pos) {  // strict: on a tie the longer (earlier listed) text wins
        best_pos = next[j];
        best = j;
      }
    }
    if (best_pos == std::string_view::npos) break;
    encode_text(text.substr(cursor, best_pos - cursor));
    out.push_back(specials[best].second);
    cursor = best_pos + specials[best].first.size();
  }
  encode_text(text.substr(cursor));
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  StreamDecoder d(*this, /*strip_leading_space=*/true, /*skip_special=*/true);
  std::string out;
  for (int32_t id : ids) out += d.push(id);
  out += d.finish();
  return out;
}

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerSpec& spec) {
  if (!spec.sp_model_path.empty()) return std::make_unique<SentencePieceTokenizer>(spec);
  if (!spec.tokens.empty()) return std::make_unique<VocabTokenizer>(spec);
  throw ModelError("model has no tokenizer: neither a tokenizer.model nor an embedded vocabulary");
}

}  // namespace lmstream
