// Bounds-checked little-endian cursor over untrusted bytes; every failure is a ModelError that
// names the file, so parsers never read past the end.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "model/model.h"

namespace lmstream {

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string name)
      : data_(data), size_(size), name_(std::move(name)) {}

  [[noreturn]] void fail(const std::string& what) const { throw ModelError(name_ + ": " + what); }

  size_t pos() const { return pos_; }
  size_t size() const { return size_; }
  size_t remaining() const { return size_ - pos_; }
  const std::string& name() const { return name_; }

  void need(size_t n, const char* what) const {
    if (n > remaining())
      fail("truncated file: needs " + std::to_string(n) + " bytes for " + what + " at offset " +
           std::to_string(pos_) + ", file has " + std::to_string(size_));
  }

  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what) {
    uint64_t len = read<uint64_t>(what);
    if (len > remaining())
      fail("truncated file: " + std::string(what) + " length " + std::to_string(len) +
           " at offset " + std::to_string(pos_ - 8) + " runs past the end of the file (" +
           std::to_string(size_) + " bytes)");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string name_;
};

}  // namespace lmstream
