// SentencePiece BPE encoding over a vocabulary table (see bpe_model.h). Follows
// google/sentencepiece src/bpe_model.cc Model::SampleEncode (without dropout) step by step.
#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <queue>
#include <stdexcept>
#include <utility>

#include "base/utf8.h"

namespace lmstream {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581

struct Symbol {
  int32_t prev;
  int32_t next;
  bool freeze;             // a user-defined piece: never merged
  std::string_view piece;  // view into the normalized text; empty once merged away
};

struct Candidate {
  float score;
  int32_t left;
  int32_t right;
  size_t size;  // bytes of the merged piece, to detect stale entries
};

// SentencePiece's SymbolPairComparator: the highest score first, then the leftmost.
struct CandidateLess {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

BpeModel::BpeModel(const std::vector<std::string>& pieces, const std::vector<float>& scores,
                   const std::vector<TokenType>& types, int32_t unk_id)
    : scores_(scores), types_(types), unk_id_(unk_id) {
  for (size_t i = 0; i < pieces.size(); ++i) {
    const std::string& p = pieces[i];
    if (p.empty()) continue;  // can never be produced from text
    const int32_t id = static_cast<int32_t>(i);
    switch (types[i]) {
      case TokenType::kNormal:
      case TokenType::kUnused:
        mergeable_.emplace(p, id);
        if (types[i] == TokenType::kUnused) has_unused_ = true;
        break;
      case TokenType::kUserDefined:
        if (mergeable_.emplace(p, id).second) {
          user_defined_.emplace(p, id);
          if (std::find(user_defined_lengths_.begin(), user_defined_lengths_.end(), p.size()) ==
              user_defined_lengths_.end())
            user_defined_lengths_.push_back(p.size());
        }
        break;
      case TokenType::kControl:
      case TokenType::kUnknown:
      case TokenType::kByte:
        reserved_.emplace(p, id);
        if (types[i] == TokenType::kByte) byte_fallback_ = true;
        break;
    }
  }
  std::sort(user_defined_lengths_.rbegin(), user_defined_lengths_.rend());
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const int32_t id = find_any(name);
    byte_ids_[b] = id >= 0 ? id : unk_id_;
  }
}

int32_t BpeModel::find_mergeable(std::string_view piece) const {
  auto it = mergeable_.find(piece);
  return it == mergeable_.end() ? -1 : it->second;
}

int32_t BpeModel::find_any(std::string_view piece) const {
  if (int32_t id = find_mergeable(piece); id >= 0) return id;
  auto it = reserved_.find(piece);
  return it == reserved_.end() ? -1 : it->second;
}

size_t BpeModel::match_user_defined(std::string_view s) const {
  for (size_t len : user_defined_lengths_)
    if (len <= s.size() && user_defined_.count(s.substr(0, len))) return len;
  return 0;
}

std::string BpeModel::normalize(std::string_view text, bool dummy_prefix) const {
  std::string out;
  if (text.empty()) return out;  // no dummy prefix on empty input either
  out.reserve(text.size() + text.size() / 2 + kSpaceSymbol.size());
  if (dummy_prefix) out += kSpaceSymbol;
  auto append_escaped = [&out](std::string_view s) {
    for (char c : s) {
      if (c == ' ')
        out += kSpaceSymbol;
      else
        out += c;
    }
  };
  size_t i = 0;
  while (i < text.size()) {
    std::string_view rest = text.substr(i);
    size_t n = user_defined_lengths_.empty() ? 0 : match_user_defined(rest);
    if (n == 0) n = utf8::valid_char_len(rest);
    if (n == 0) {  // malformed byte: U+FFFD, one byte consumed (normalizer.cc NormalizePrefix)
      out += utf8::kReplacement;
      i += 1;
      continue;
    }
    append_escaped(rest.substr(0, n));
    i += n;
  }
  return out;
}

void BpeModel::emit(std::string_view piece, std::vector<int32_t>& out) const {
  const int32_t id = find_any(piece);
  if (id >= 0 && types_[size_t(id)] != TokenType::kUnknown) {
    out.push_back(id);
  } else if (byte_fallback_) {  // sentencepiece_processor.cc PopulateSentencePieceText
    for (unsigned char b : piece) out.push_back(byte_ids_[b]);
  } else {
    out.push_back(unk_id_);
  }
}

std::vector<int32_t> BpeModel::encode(std::string_view text, bool dummy_prefix) const {
  const std::string normalized = normalize(text, dummy_prefix);
  std::vector<int32_t> out;
  if (normalized.empty()) return out;
  if (normalized.size() >= size_t(std::numeric_limits<int32_t>::max()))
    throw std::length_error("text too long to tokenize");

  // Split into characters; user-defined pieces stay whole and frozen.
  std::vector<Symbol> symbols;
  symbols.reserve(normalized.size());
  std::string_view rest = normalized;
  while (!rest.empty()) {
    size_t n = user_defined_lengths_.empty() ? 0 : match_user_defined(rest);
    const bool freeze = n > 0;
    if (!freeze) n = std::max<size_t>(1, std::min(rest.size(), utf8::valid_char_len(rest)));
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, rest.size() == n ? -1 : index + 1, freeze, rest.substr(0, n)});
    rest.remove_prefix(n);
  }

  std::priority_queue<Candidate, std::vector<Candidate>, CandidateLess> agenda;
  // Unused pieces may be merged through but are split back at the end.
  std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;

  auto maybe_add = [&](int32_t left, int32_t right) {
    if (left == -1 || right == -1 || symbols[left].freeze || symbols[right].freeze) return;
    const std::string_view piece(symbols[left].piece.data(),
                                 symbols[left].piece.size() + symbols[right].piece.size());
    const int32_t id = find_mergeable(piece);
    if (id < 0) return;
    agenda.push({scores_[size_t(id)], left, right, piece.size()});
    if (has_unused_ && types_[size_t(id)] == TokenType::kUnused)
      rev_merge[piece] = {symbols[left].piece, symbols[right].piece};
  };

  for (size_t i = 1; i < symbols.size(); ++i) maybe_add(int32_t(i - 1), int32_t(i));

  while (!agenda.empty()) {
    const Candidate top = agenda.top();
    agenda.pop();
    Symbol& l = symbols[top.left];
    Symbol& r = symbols[top.right];
    // Stale: one side was merged away or grew since this candidate was queued.
    if (l.piece.empty() || r.piece.empty() || l.piece.size() + r.piece.size() != top.size) continue;
    l.piece = std::string_view(l.piece.data(), top.size);
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = top.left;
    r.piece = {};
    maybe_add(l.prev, top.left);
    maybe_add(top.left, l.next);
  }

  // Output, splitting unused pieces back into what they were merged from (left part first).
  out.reserve(symbols.size());
  std::vector<std::string_view> stack;
  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    stack.push_back(symbols[i].piece);
    while (!stack.empty()) {
      const std::string_view w = stack.back();
      stack.pop_back();
      if (has_unused_) {
        const int32_t id = find_any(w);
        if (id >= 0 && types_[size_t(id)] == TokenType::kUnused) {
          if (auto it = rev_merge.find(w); it != rev_merge.end()) {
            stack.push_back(it->second.second);
            stack.push_back(it->second.first);
            continue;
          }
        }
      }
      emit(w, out);
    }
  }
  return out;
}

}  // namespace lmstream
