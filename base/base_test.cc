// Unit tests for base/: strings, UTF-8, time formats, files, INI.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "base/files.h"
#include "base/ini.h"
#include "base/strings.h"
#include "base/time.h"
#include "base/utf8.h"

namespace lmstream::base {
namespace {

TEST(Strings, CaseAndCompare) {
  EXPECT_EQ(to_lower("Content-TYPE"), "content-type");
  EXPECT_EQ(to_upper("abc-1"), "ABC-1");
  EXPECT_TRUE(iequals("X-Amz-Date", "x-amz-date"));
  EXPECT_FALSE(iequals("abc", "abcd"));
  EXPECT_TRUE(istarts_with("Bearer xyz", "bearer "));
  EXPECT_FALSE(istarts_with("Bear", "bearer"));
}

TEST(Strings, TrimSplitCollapse) {
  EXPECT_EQ(trim("  a b \t\r\n"), "a b");
  EXPECT_EQ(trim(" \t "), "");
  EXPECT_EQ(collapse_whitespace("  a   b\t\tc  "), "a b c");
  EXPECT_EQ(split("a,,b", ',').size(), 3u);
  EXPECT_EQ(split("", ',').size(), 1u);
  EXPECT_EQ(split("a,b,", ',')[2], "");
}

TEST(Strings, PercentDecodeAndInts) {
  EXPECT_EQ(percent_decode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(percent_decode("100%"), "100%");
  EXPECT_EQ(percent_decode("%4"), "%4");
  EXPECT_EQ(percent_decode("%zz%41"), "%zzA");
  EXPECT_EQ(hex_digit_value('F'), 15);
  EXPECT_EQ(hex_digit_value('g'), -1);
  long long v = 0;
  EXPECT_TRUE(parse_int64("-42", v));
  EXPECT_EQ(v, -42);
  EXPECT_FALSE(parse_int64("42x", v));
  EXPECT_FALSE(parse_int64("", v));
  EXPECT_FALSE(parse_int64("99999999999999999999", v));
}

TEST(Strings, ByteSizes) {
  EXPECT_EQ(parse_byte_size("512MiB"), size_t(512) << 20);
  EXPECT_EQ(parse_byte_size("1.5G"), size_t(3) << 29);
  EXPECT_EQ(parse_byte_size("1000"), 1000u);
  EXPECT_THROW(parse_byte_size("12XB"), std::invalid_argument);
  EXPECT_THROW(parse_byte_size("-1MiB"), std::invalid_argument);
  EXPECT_THROW(parse_byte_size("big"), std::invalid_argument);
}

TEST(Utf8, DecodeIsStrict) {
  char32_t cp = 0;
  EXPECT_EQ(utf8::decode("\xC3\xA9", 0, cp), 2u);
  EXPECT_EQ(cp, U'\u00E9');
  EXPECT_EQ(utf8::decode("\xF0\x9F\x98\x80", 0, cp), 4u);
  EXPECT_EQ(cp, U'\U0001F600');
  EXPECT_EQ(utf8::decode("\xC0\xAF", 0, cp), 0u);      // overlong
  EXPECT_EQ(utf8::decode("\xED\xA0\x80", 0, cp), 0u);  // surrogate
  EXPECT_EQ(utf8::decode("\xE2\x82", 0, cp), 0u);      // truncated
  EXPECT_TRUE(utf8::is_incomplete_prefix("\xE2\x82"));
  const auto chars = utf8::characters(
      "a\xC3\xA9\xFF"
      "b");
  ASSERT_EQ(chars.size(), 4u);
  EXPECT_EQ(chars[1], "\xC3\xA9");
  EXPECT_EQ(chars[2], "\xFF");
  EXPECT_TRUE(utf8::is_python_space(U'\u3000'));
  EXPECT_TRUE(utf8::is_python_space(U'\x1C'));
  EXPECT_FALSE(utf8::is_python_space(U'\u200B'));
}

TEST(Time, FormatsAndParses) {
  const auto t = civil_time(2015, 8, 30, 12, 36, 0);
  ASSERT_TRUE(t);
  EXPECT_EQ(format_iso8601_basic(*t), "20150830T123600Z");
  EXPECT_EQ(format_yyyymmdd(*t), "20150830");
  EXPECT_EQ(format_iso8601_millis(*t + std::chrono::milliseconds(7)), "2015-08-30T12:36:00.007Z");
  EXPECT_EQ(format_http_date(*t), "Sun, 30 Aug 2015 12:36:00 GMT");
  EXPECT_EQ(parse_iso8601_basic("20150830T123600Z"), t);
  EXPECT_EQ(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"), t);
  EXPECT_EQ(parse_http_date("30 Aug 2015 12:36:00 UTC"), t);
  EXPECT_FALSE(parse_iso8601_basic("20150230T123600Z"));
  EXPECT_FALSE(parse_http_date("Sun, 30 Aug 2015 12:36:00 PST"));
  EXPECT_FALSE(civil_time(2015, 8, 30, 24, 0, 0));
}

TEST(Files, AtomicWriteAndRead) {
  const std::string dir = ::testing::TempDir() + "base_files_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/f.bin";
  write_file_atomic(path, std::string("a\0b", 3));
  EXPECT_EQ(read_file(path), std::string("a\0b", 3));
  write_file_atomic(path, "second");
  EXPECT_EQ(read_file(path), "second");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir),
                          std::filesystem::directory_iterator()),
            1);  // no temporary left behind
  try {
    read_file(dir + "/missing");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing: No such file"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST(Ini, SectionsAndErrors) {
  const auto s = parse_ini("# c\n[default]\nAWS_Access_Key_Id = AK \n; c\n[p2]\nk=v=w\n", "f");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].name, "default");
  EXPECT_EQ(s[0].line, 2);
  ASSERT_NE(s[0].find("aws_access_key_id"), nullptr);
  EXPECT_EQ(*s[0].find("aws_access_key_id"), "AK");
  EXPECT_EQ(*s[1].find("k"), "v=w");
  EXPECT_EQ(s[1].find("x"), nullptr);
  EXPECT_THROW(parse_ini("k = v\n", "f"), std::runtime_error);
  try {
    parse_ini("[a]\n[b\n", "cfg");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "cfg:2: malformed section header");
  }
}

}  // namespace
}  // namespace lmstream::base
