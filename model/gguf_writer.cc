// GGUF v3 writer (see gguf_writer.h).
#include "model/gguf_writer.h"

#include <cerrno>
#include <cstring>

#include "model/model.h"

namespace lmstream {

void GgufWriter::raw(const void* p, size_t n) { meta_.append(static_cast<const char*>(p), n); }

void GgufWriter::key(const std::string& k, uint32_t type) {
  uint64_t len = k.size();
  raw(&len, 8);
  raw(k.data(), k.size());
  raw(&type, 4);
  ++n_kv_;
}

void GgufWriter::add_string(const std::string& k, const std::string& v) {
  key(k, 8);
  uint64_t len = v.size();
  raw(&len, 8);
  raw(v.data(), v.size());
}
void GgufWriter::add_u32(const std::string& k, uint32_t v) { key(k, 4), raw(&v, 4); }
void GgufWriter::add_i32(const std::string& k, int32_t v) { key(k, 5), raw(&v, 4); }
void GgufWriter::add_f32(const std::string& k, float v) { key(k, 6), raw(&v, 4); }
void GgufWriter::add_bool(const std::string& k, bool v) {
  key(k, 7);
  uint8_t b = v;
  raw(&b, 1);
}
void GgufWriter::add_string_array(const std::string& k, const std::vector<std::string>& v) {
  key(k, 9);
  uint32_t t = 8;
  uint64_t n = v.size();
  raw(&t, 4), raw(&n, 8);
  for (const std::string& s : v) {
    uint64_t len = s.size();
    raw(&len, 8), raw(s.data(), s.size());
  }
}
void GgufWriter::add_f32_array(const std::string& k, const std::vector<float>& v) {
  key(k, 9);
  uint32_t t = 6;
  uint64_t n = v.size();
  raw(&t, 4), raw(&n, 8), raw(v.data(), v.size() * 4);
}
void GgufWriter::add_i32_array(const std::string& k, const std::vector<int32_t>& v) {
  key(k, 9);
  uint32_t t = 5;
  uint64_t n = v.size();
  raw(&t, 4), raw(&n, 8), raw(v.data(), v.size() * 4);
}

void GgufWriter::add_tensor(const std::string& name, DType type, int64_t rows, int64_t cols) {
  Info i{name, type, rows, cols, 0, 0};
  i.nbytes = dtype_row_bytes(type, cols) * uint64_t(rows ? rows : 1);
  uint64_t off = 0;
  if (!tensors_.empty()) {
    const Info& p = tensors_.back();
    off = (p.offset + p.nbytes + kAlignment - 1) / kAlignment * kAlignment;
  }
  i.offset = off;
  tensors_.push_back(i);
}

void GgufWriter::out(const void* p, size_t n) {
  if (n && std::fwrite(p, 1, n, f_) != n)
    throw ModelError(path_ + ": write failed: " + std::strerror(errno));
}

void GgufWriter::begin(const std::string& path) {
  path_ = path;
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw ModelError(path + ": cannot create: " + std::strerror(errno));
  std::setvbuf(f_, nullptr, _IOFBF, 1 << 22);
  std::string h = "GGUF";
  uint32_t version = 3;
  uint64_t nt = tensors_.size();
  h.append(reinterpret_cast<const char*>(&version), 4);
  h.append(reinterpret_cast<const char*>(&nt), 8);
  h.append(reinterpret_cast<const char*>(&n_kv_), 8);
  h += meta_;
  for (const Info& i : tensors_) {
    uint64_t len = i.name.size();
    h.append(reinterpret_cast<const char*>(&len), 8);
    h += i.name;
    uint32_t nd = i.rows ? 2 : 1;
    h.append(reinterpret_cast<const char*>(&nd), 4);
    int64_t ne0 = i.cols, ne1 = i.rows;
    h.append(reinterpret_cast<const char*>(&ne0), 8);
    if (i.rows) h.append(reinterpret_cast<const char*>(&ne1), 8);
    uint32_t t = uint32_t(i.type);
    h.append(reinterpret_cast<const char*>(&t), 4);
    h.append(reinterpret_cast<const char*>(&i.offset), 8);
  }
  h.resize((h.size() + kAlignment - 1) / kAlignment * kAlignment, '\0');
  out(h.data(), h.size());
}

void GgufWriter::write_tensor(const void* data, size_t n) {
  if (next_ >= tensors_.size() || n != tensors_[next_].nbytes)
    throw ModelError(path_ + ": internal error: tensor data does not match the declared tensors");
  out(data, n);
  static const char zeros[kAlignment] = {};
  out(zeros, (kAlignment - n % kAlignment) % kAlignment);
  ++next_;
}

void GgufWriter::finish() {
  if (next_ != tensors_.size())
    throw ModelError(path_ + ": internal error: not every tensor was written");
  std::FILE* f = f_;
  f_ = nullptr;
  if (std::fclose(f) != 0) throw ModelError(path_ + ": write failed: " + std::strerror(errno));
}

GgufWriter::~GgufWriter() {
  if (f_) std::fclose(f_);
}

}  // namespace lmstream
