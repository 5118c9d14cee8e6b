// GGUF v3 writer: collect metadata and tensor infos, write the header, then stream each tensor's
// bytes in the order they were declared (padding to the alignment is inserted here).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace lmstream {

class GgufWriter {
 public:
  static constexpr uint32_t kAlignment = 32;

  void add_string(const std::string& key, const std::string& v);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  void add_f32_array(const std::string& key, const std::vector<float>& v);
  void add_i32_array(const std::string& key, const std::vector<int32_t>& v);
  // rows == 0 declares a 1-D tensor of `cols` elements.
  void add_tensor(const std::string& name, DType type, int64_t rows, int64_t cols);

  // Opens path and writes magic, counts, metadata, tensor infos and padding. Throws ModelError.
  void begin(const std::string& path);
  // Writes the next declared tensor's bytes (exactly its size), then padding.
  void write_tensor(const void* data, size_t n);
  void finish();  // checks every tensor was written, closes the file
  ~GgufWriter();

 private:
  struct Info {
    std::string name;
    DType type;
    int64_t rows, cols;
    uint64_t nbytes, offset;
  };
  void key(const std::string& k, uint32_t type);
  void raw(const void* p, size_t n);
  void out(const void* p, size_t n);
  std::string meta_;
  uint64_t n_kv_ = 0;
  std::vector<Info> tensors_;
  size_t next_ = 0;
  std::FILE* f_ = nullptr;
  std::string path_;
};

}  // namespace lmstream
