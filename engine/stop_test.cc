// Tests for engine/stop: holdback of possible stop prefixes, matches split across pushes at every
// byte boundary, several and overlapping stop strings, include/exclude, UTF-8 safety, flush.
#include "engine/stop.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace lmstream {
namespace {

// Reference: the stop occurrence that ends first (longest on a tie) over the whole text.
struct Expected {
  std::string output;
  std::string matched;
};

Expected reference(const std::string& text, const std::vector<std::string>& stops, bool include) {
  size_t best_end = std::string::npos, best_start = 0;
  std::string matched;
  for (const std::string& s : stops) {
    if (s.empty()) continue;
    size_t start = text.find(s);
    if (start == std::string::npos) continue;
    size_t end = start + s.size();
    if (best_end == std::string::npos || end < best_end ||
        (end == best_end && start < best_start)) {
      best_end = end;
      best_start = start;
      matched = s;
    }
  }
  if (best_end == std::string::npos) return {text, ""};
  return {text.substr(0, include ? best_end : best_start), matched};
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

// Feeds text in the given pieces; checks that what was emitted so far is always a prefix of the
// final output and is whole UTF-8 characters, and returns everything emitted (plus flush).
std::string run(StopMatcher& m, const std::vector<std::string>& pieces, bool check_utf8) {
  std::string out;
  for (const std::string& piece : pieces) {
    std::string emitted = m.push(piece);
    if (check_utf8) {
      EXPECT_TRUE(valid_utf8(emitted)) << "emitted a split character";
    }
    out += emitted;
  }
  if (!m.stopped()) out += m.flush();
  return out;
}

// Every way to cut text into three pieces gives the reference result.
void check_all_splits(const std::string& text, const std::vector<std::string>& stops) {
  for (bool include : {true, false}) {
    Expected want = reference(text, stops, include);
    for (size_t i = 0; i <= text.size(); ++i) {
      for (size_t j = i; j <= text.size(); ++j) {
        StopMatcher m(stops, include);
        std::string got =
            run(m, {text.substr(0, i), text.substr(i, j - i), text.substr(j)}, valid_utf8(text));
        ASSERT_EQ(got, want.output)
            << "text '" << text << "' split at " << i << "," << j << " include " << include;
        EXPECT_EQ(m.stopped(), !want.matched.empty());
        EXPECT_EQ(m.matched(), want.matched);
      }
    }
  }
}

TEST(StopMatcher, NoStopsPassesTextThrough) {
  StopMatcher m({}, true);
  EXPECT_EQ(m.push("hello "), "hello ");
  EXPECT_EQ(m.push("world"), "world");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, HoldsBackAPossibleStopUntilItCannotBeOne) {
  StopMatcher m({"###"}, true);
  EXPECT_EQ(m.push("abc#"), "abc");
  EXPECT_EQ(m.push("#"), "");
  EXPECT_EQ(m.push("x"), "##x");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, IncludeKeepsTheStopString) {
  StopMatcher m({"User:"}, true);
  EXPECT_EQ(m.push("Sure. Us"), "Sure. ");
  EXPECT_EQ(m.push("er: more"), "User:");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "User:");
  EXPECT_EQ(m.push("ignored"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, ExcludeEndsBeforeTheStopString) {
  StopMatcher m({"User:"}, false);
  EXPECT_EQ(m.push("Sure. Us"), "Sure. ");
  EXPECT_EQ(m.push("er: more"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, FlushReturnsHeldText) {
  StopMatcher m({"</answer>"}, false);
  EXPECT_EQ(m.push("42 </ans"), "42 ");
  EXPECT_EQ(m.flush(), "</ans");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, OverlappingPrefixesStopAtTheShorter) {
  StopMatcher m({"abc", "ab"}, true);
  EXPECT_EQ(m.push("xa"), "x");
  EXPECT_EQ(m.push("bc"), "ab");
  EXPECT_EQ(m.matched(), "ab");
}

TEST(StopMatcher, SameEndPrefersTheLongerStop) {
  StopMatcher m({"bc", "abc"}, false);
  EXPECT_EQ(m.push("xabcd"), "x");
  EXPECT_EQ(m.matched(), "abc");
}

TEST(StopMatcher, EmptyStopStringsAreIgnored) {
  StopMatcher m({"", "z"}, true);
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, RepeatedPrefixCharacters) {
  StopMatcher m({"aab"}, false);
  EXPECT_EQ(m.push("xa"), "x");
  EXPECT_EQ(m.push("a"), "");
  EXPECT_EQ(m.push("a"), "a");
  EXPECT_EQ(m.push("b!"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, EverySplitAsciiSingleStop) {
  check_all_splits("The answer is 42.\nQuestion: next", {"\nQuestion:"});
  check_all_splits("no stop in here at all", {"\nQuestion:"});
  check_all_splits("aaab tail", {"aab"});
}

TEST(StopMatcher, EverySplitMultipleAndOverlappingStops) {
  check_all_splits("xxabcab yy", {"abc", "ab"});
  check_all_splits("one two three", {"three", "two t", "wo"});
  check_all_splits("end</s>", {"</s>", "s>", "</"});
  check_all_splits("prefix almost<|end|", {"<|end|>", "<|eot|>"});
}

TEST(StopMatcher, EverySplitUtf8) {
  check_all_splits("Café! déjà vu ✓ 😀 ok", {"✓ 😀"});
  check_all_splits("Café! déjà vu ✓ 😀 ok", {"é!"});
  check_all_splits("naïve è é", {"é"});  // è and é share their lead byte
  check_all_splits("日本語のテキスト", {"テキ", "本語x"});
}

TEST(StopMatcher, RandomTextsStopsAndCutsMatchTheReference) {
  // Small alphabet so stops and near-misses are frequent; multi-byte characters share bytes.
  const std::vector<std::string> alphabet = {"a",        "b",        " ",
                                             "\xC3\xA9", "\xC3\xA8", "\xF0\x9F\x98\x80"};
  std::mt19937 gen(2024);
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(gen); };
  for (int iter = 0; iter < 2000; ++iter) {
    auto random_text = [&](size_t max_chars) {
      std::string t;
      for (size_t i = 0, n = 1 + pick(max_chars); i < n; ++i) t += alphabet[pick(alphabet.size())];
      return t;
    };
    std::vector<std::string> stops;
    for (size_t i = 0, n = 1 + pick(3); i < n; ++i) stops.push_back(random_text(3));
    const std::string text = random_text(14);
    const bool include = pick(2) == 1;
    std::vector<std::string> pieces;
    for (size_t pos = 0; pos < text.size();) {
      size_t len = std::min(text.size() - pos, 1 + pick(6));
      pieces.push_back(text.substr(pos, len));
      pos += len;
    }
    StopMatcher m(stops, include);
    Expected want = reference(text, stops, include);
    ASSERT_EQ(run(m, pieces, true), want.output) << "text '" << text << "' iteration " << iter;
    EXPECT_EQ(m.matched(), want.matched);
  }
}

TEST(StopMatcher, NeverSplitsACharacterBetweenEmittedAndHeld) {
  // The stop shares é's lead byte with è: byte-wise, "\xC3" is a stop prefix.
  StopMatcher m({"é"}, true);
  std::string text = "è";
  EXPECT_EQ(m.push(text.substr(0, 1)), "");
  EXPECT_EQ(m.push(text.substr(1)), "è");
  // An incomplete character at the end waits for its other bytes even without any stop prefix.
  StopMatcher n({"zz"}, true);
  std::string emoji = "a😀";
  EXPECT_EQ(n.push(emoji.substr(0, 3)), "a");
  EXPECT_EQ(n.push(emoji.substr(3)), "😀");
}

TEST(StopMatcher, StopStartingMidCharacterDoesNotSplitIt) {
  // A (malformed) stop string that starts with a continuation byte: the held tail then starts
  // inside é, so the whole character is held instead.
  StopMatcher m({"\xA9x"}, true);
  EXPECT_EQ(m.push("caf\xC3\xA9"), "caf");
  EXPECT_EQ(m.push("y"), "\xC3\xA9y");
}

TEST(StopMatcher, InvalidUtf8IsPassedOnNotHeldForever) {
  StopMatcher m({"stop"}, true);
  std::string bad = "\x80\x80\x80\x80\x80 x";
  std::string out = m.push(bad);
  out += m.flush();
  EXPECT_EQ(out, bad);
  StopMatcher n({"stop"}, true);
  EXPECT_EQ(n.push("ab\xF0\x9F"), "ab");  // incomplete tail held
  EXPECT_EQ(n.flush(), "\xF0\x9F");       // and returned at the end
}

}  // namespace
}  // namespace lmstream
