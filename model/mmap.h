// Read-only memory mapping of a model file; tensors point straight into it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace lmstream {

class MappedFile {
 public:
  // Maps the whole file read-only. Throws ModelError("<path>: ...") when it cannot.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace lmstream
