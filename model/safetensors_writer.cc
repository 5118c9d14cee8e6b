// safetensors writer (see safetensors_writer.h).
#include "model/safetensors_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "model/model.h"

namespace lmstream {

void write_safetensors(const std::string& path, const std::vector<SafetensorsOut>& tensors) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  h["__metadata__"] = {{"format", "pt"}};
  uint64_t off = 0;
  for (const SafetensorsOut& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.nbytes}}};
    off += t.nbytes;
  }
  std::string hs = h.dump();
  hs.resize((hs.size() + 7) / 8 * 8, ' ');
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) throw ModelError(path + ": cannot create: " + std::strerror(errno));
  auto out = [&](const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f.get()) != n)
      throw ModelError(path + ": write failed: " + std::strerror(errno));
  };
  uint64_t n = hs.size();
  out(&n, 8);
  out(hs.data(), hs.size());
  for (const SafetensorsOut& t : tensors) {
    std::unique_ptr<uint8_t[]> buf(new uint8_t[t.nbytes ? t.nbytes : 1]);
    t.fill(buf.get());
    out(buf.get(), t.nbytes);
  }
  std::FILE* raw = f.release();
  if (std::fclose(raw) != 0) throw ModelError(path + ": write failed: " + std::strerror(errno));
}

}  // namespace lmstream
