// SentencePiece ModelProto encoding/decoding by hand (see spm_proto.h) and the built-in vocabulary.
#include "model/spm_proto.h"

#include <cstdio>
#include <cstring>
#include <set>

namespace lmstream {
namespace {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}
void put_key(std::string& out, int field, int wire) {
  put_varint(out, uint64_t(field) << 3 | uint64_t(wire));
}
void put_uint(std::string& out, int field, uint64_t v) {
  put_key(out, field, 0), put_varint(out, v);
}
void put_int(std::string& out, int field, int64_t v) { put_uint(out, field, uint64_t(v)); }
void put_bytes(std::string& out, int field, const std::string& b) {
  put_key(out, field, 2);
  put_varint(out, b.size());
  out += b;
}
void put_float(std::string& out, int field, float f) {
  put_key(out, field, 5);
  char b[4];
  std::memcpy(b, &f, 4);
  out.append(b, 4);
}

struct Cursor {
  const std::string& s;
  size_t pos, end;
  const std::string& name;
  [[noreturn]] void fail() const {
    throw ModelError(name + ": malformed SentencePiece model (protobuf)");
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= end) fail();
      uint8_t b = uint8_t(s[pos++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail();
  }
  // Skips a field's value; returns [begin, end) for length-delimited ones.
  std::pair<size_t, size_t> value(int wire) {
    size_t n = 0;
    switch (wire) {
      case 0:
        varint();
        return {pos, pos};
      case 1:
        n = 8;
        break;
      case 5:
        n = 4;
        break;
      case 2: {
        uint64_t len = varint();
        if (len > end - pos) fail();
        n = size_t(len);
        break;
      }
      default:
        fail();
    }
    if (n > end - pos) fail();
    size_t b = pos;
    pos += n;
    return {b, pos};
  }
};

}  // namespace

std::string encode_sp_model(const std::vector<SpPiece>& pieces) {
  std::string out;
  for (const SpPiece& p : pieces) {
    std::string m;
    put_bytes(m, 1, p.piece);
    put_float(m, 2, p.score);
    put_uint(m, 3, uint64_t(p.type));
    put_bytes(out, 1, m);
  }
  std::string trainer;
  put_uint(trainer, 3, 2);  // model_type = BPE
  put_uint(trainer, 4, pieces.size());
  put_uint(trainer, 20, 16);  // max_sentencepiece_length
  put_uint(trainer, 35, 1);   // byte_fallback
  put_int(trainer, 40, 0);    // unk_id
  put_int(trainer, 41, 1);    // bos_id
  put_int(trainer, 42, 2);    // eos_id
  put_int(trainer, 43, -1);   // pad_id
  put_bytes(trainer, 45, "<unk>");
  put_bytes(trainer, 46, "<s>");
  put_bytes(trainer, 47, "</s>");
  put_bytes(trainer, 48, "<pad>");
  put_bytes(out, 2, trainer);
  std::string norm;
  put_bytes(norm, 1, "identity");
  put_uint(norm, 3, 1);  // add_dummy_prefix
  put_uint(norm, 4, 0);  // remove_extra_whitespaces
  put_uint(norm, 5, 1);  // escape_whitespaces
  put_bytes(out, 3, norm);
  return out;
}

std::vector<SpPiece> decode_sp_pieces(const std::string& bytes, const std::string& name) {
  std::vector<SpPiece> out;
  Cursor c{bytes, 0, bytes.size(), name};
  while (c.pos < c.end) {
    uint64_t key = c.varint();
    int field = int(key >> 3), wire = int(key & 7);
    auto [b, e] = c.value(wire);
    if (field != 1 || wire != 2) continue;
    SpPiece p;
    Cursor m{bytes, b, e, name};
    while (m.pos < m.end) {
      uint64_t k = m.varint();
      int f = int(k >> 3), w = int(k & 7);
      size_t at = m.pos;
      auto [vb, ve] = m.value(w);
      if (f == 1 && w == 2) p.piece = bytes.substr(vb, ve - vb);
      if (f == 2 && w == 5) std::memcpy(&p.score, bytes.data() + vb, 4);
      if (f == 3 && w == 0) {
        Cursor v{bytes, at, m.end, name};
        uint64_t t = v.varint();
        if (t < 1 || t > 6) c.fail();
        p.type = TokenType(t);
      }
    }
    out.push_back(std::move(p));
  }
  if (out.empty()) c.fail();
  return out;
}

std::vector<SpPiece> builtin_sp_vocab() {
  static const char* kWords[] = {
      "the",     "of",          "and",       "to",        "in",      "is",       "was",
      "that",    "for",         "it",        "with",      "as",      "on",       "he",
      "be",      "at",          "by",        "this",      "had",     "not",      "are",
      "but",     "from",        "or",        "have",      "an",      "they",     "which",
      "one",     "you",         "were",      "her",       "all",     "she",      "there",
      "would",   "their",       "we",        "him",       "been",    "has",      "when",
      "who",     "will",        "more",      "no",        "if",      "out",      "so",
      "said",    "what",        "up",        "its",       "about",   "into",     "than",
      "them",    "can",         "only",      "other",     "new",     "some",     "could",
      "time",    "these",       "two",       "may",       "then",    "do",       "first",
      "any",     "my",          "now",       "such",      "like",    "our",      "over",
      "man",     "me",          "even",      "most",      "made",    "after",    "also",
      "did",     "many",        "before",    "must",      "through", "back",     "years",
      "where",   "much",        "your",      "way",       "well",    "down",     "should",
      "because", "each",        "just",      "those",     "people",  "how",      "too",
      "little",  "state",       "good",      "very",      "make",    "world",    "still",
      "own",     "see",         "men",       "work",      "long",    "get",      "here",
      "between", "both",        "life",      "being",     "under",   "never",    "day",
      "same",    "another",     "know",      "while",     "last",    "might",    "us",
      "great",   "old",         "year",      "off",       "come",    "since",    "against",
      "go",      "came",        "right",     "used",      "take",    "three",    "hello",
      "world",   "story",       "once",      "upon",      "a",       "I",        "The",
      "It",      "In",          "He",        "She",       "They",    "We",       "You",
      "What",    "How",         "Why",       "model",     "token",   "stream",   "server",
      "test",    "data",        "text",      "number",    "water",   "house",    "small",
      "large",   "light",       "night",     "morning",   "happy",   "friend",   "friends",
      "school",  "play",        "played",    "went",      "saw",     "big",      "dog",
      "cat",     "bird",        "tree",      "sun",       "sky",     "blue",     "red",
      "green",   "love",        "girl",      "boy",       "named",   "Lily",     "Tom",
      "mom",     "dad",         "want",      "wanted",    "look",    "looked",   "help",
      "thing",   "things",      "find",      "found",     "think",   "tell",     "ask",
      "give",    "name",        "place",     "home",      "car",     "book",     "question",
      "answer",  "please",      "thank",     "thanks",    "yes",     "computer", "language",
      "system",  "program",     "code",      "function",  "write",   "read",     "learn",
      "example", "information", "important", "different", "number",  "part"};
  std::vector<SpPiece> v;
  std::set<std::string> seen;
  auto add = [&](const std::string& s, float score, TokenType t) {
    if (seen.insert(s).second) v.push_back({s, score, t});
  };
  add("<unk>", 0, TokenType::kUnknown);
  add("<s>", 0, TokenType::kControl);
  add("</s>", 0, TokenType::kControl);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    add(buf, 0, TokenType::kByte);
  }
  const std::string sp = "\xE2\x96\x81";  // U+2581, SentencePiece's space
  // Multi-character pieces: every prefix of "▁word" from "▁" + 1 char up, so merges reach the word.
  std::vector<std::string> multi;
  for (const char* w : kWords) {
    std::string full = sp + w;
    for (size_t n = sp.size() + 1; n <= full.size(); ++n) multi.push_back(full.substr(0, n));
  }
  for (const char* suffix : {"ing", "ed", "er", "ly", "es", "s."}) {
    std::string s = suffix;
    for (size_t n = 2; n <= s.size(); ++n) multi.push_back(s.substr(0, n));
  }
  float score = -1;
  for (const std::string& s : multi)
    if (!seen.count(s)) add(s, score--, TokenType::kNormal);
  // Single characters last (lowest scores), as SentencePiece BPE models list their alphabet.
  add(sp, score--, TokenType::kNormal);
  const std::string chars =
      "etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,!?;:'\"-()[]{}/"
      "\\@#$%&*+=<>_~`^|";
  for (char ch : chars) add(std::string(1, ch), score--, TokenType::kNormal);
  return v;
}

}  // namespace lmstream
