// The embedded default model: models/demo/demo-q8_0.gguf (the project's own small Llama chat
// model, tools/demo-model/) is assembled into the binary with .incbin and written once to a cache
// file, so `lmstream serve` and `generate` work with no --model on a fresh machine.
#include "cli/demo_model.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

#ifndef LMSTREAM_DEMO_MODEL_FILE
#error "LMSTREAM_DEMO_MODEL_FILE (the GGUF to embed) must be defined by the build"
#endif

asm(".section .rodata\n"
    ".balign 64\n"
    ".global lmstream_demo_model_begin\n"
    "lmstream_demo_model_begin:\n"
    ".incbin \"" LMSTREAM_DEMO_MODEL_FILE
    "\"\n"
    ".global lmstream_demo_model_end\n"
    "lmstream_demo_model_end:\n"
    ".previous\n");

extern "C" const unsigned char lmstream_demo_model_begin[];
extern "C" const unsigned char lmstream_demo_model_end[];

namespace lmstream::cli {
namespace {

uint64_t fnv1a(const unsigned char* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

std::string cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/lmstream";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/lmstream";
  return "/tmp/lmstream-cache";
}

void mkdirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') mkdir(dir.substr(0, i).c_str(), 0755);
  }
}

}  // namespace

std::string_view demo_model_bytes() {
  return {reinterpret_cast<const char*>(lmstream_demo_model_begin),
          size_t(lmstream_demo_model_end - lmstream_demo_model_begin)};
}

std::string demo_model_path() {
  const std::string_view bytes = demo_model_bytes();
  char name[64];
  std::snprintf(name, sizeof name, "/demo-q8_0-%016llx.gguf",
                static_cast<unsigned long long>(fnv1a(lmstream_demo_model_begin, bytes.size())));
  const std::string dir = cache_dir(), path = dir + name;
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && size_t(st.st_size) == bytes.size()) return path;
  mkdirs(dir);
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream o(tmp, std::ios::binary | std::ios::trunc);
    o.write(bytes.data(), std::streamsize(bytes.size()));
    o.close();
    if (!o) {
      std::remove(tmp.c_str());
      throw std::runtime_error("embedded demo model: cannot write " + tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("embedded demo model: cannot rename to " + path);
  }
  return path;
}

std::string demo_model_note(const std::string& path) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", double(demo_model_bytes().size()) / 1048576.0);
  return std::string("no --model given: using the embedded demo model (lmstream-demo, ") + buf +
         " MiB Q8_0, models/demo/README.md) from " + path;
}

std::string use_demo_model() {
  std::string path = demo_model_path();
  std::fprintf(stderr, "[lmstream] %s\n", demo_model_note(path).c_str());
  return path;
}

}  // namespace lmstream::cli
