// Prefix-cache hash chain over OpenSSL's SHA-256 (see prefix_hash.h).
#include "scheduler/prefix_hash.h"

#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace lmstream {

namespace {
struct Sha256 {
  Sha256() : ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
      throw std::runtime_error("SHA-256 initialisation failed");
  }
  void add(const void* p, size_t n) {
    if (EVP_DigestUpdate(ctx.get(), p, n) != 1) throw std::runtime_error("SHA-256 update failed");
  }
  BlockDigest done() {
    BlockDigest d{};
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx.get(), d.data(), &len) != 1 || len != d.size())
      throw std::runtime_error("SHA-256 final failed");
    return d;
  }
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx;
};
}  // namespace

BlockDigest prefix_root(const std::string& cache_namespace, const std::string& salt) {
  Sha256 h;
  static const char kTag[] = "lmstream prefix cache v1";
  h.add(kTag, sizeof kTag);  // with its NUL: fields are separated unambiguously by lengths below
  const uint64_t lens[2] = {cache_namespace.size(), salt.size()};
  h.add(lens, sizeof lens);
  h.add(cache_namespace.data(), cache_namespace.size());
  h.add(salt.data(), salt.size());
  return h.done();
}

BlockDigest prefix_block(const BlockDigest& parent, std::span<const int32_t> tokens) {
  Sha256 h;
  h.add(parent.data(), parent.size());
  std::vector<uint8_t> buf(tokens.size() * 4);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const uint32_t t = uint32_t(tokens[i]);
    buf[4 * i] = uint8_t(t);
    buf[4 * i + 1] = uint8_t(t >> 8);
    buf[4 * i + 2] = uint8_t(t >> 16);
    buf[4 * i + 3] = uint8_t(t >> 24);
  }
  h.add(buf.data(), buf.size());
  return h.done();
}

uint64_t prefix_key(const BlockDigest& d) {
  uint64_t k;
  std::memcpy(&k, d.data(), sizeof k);
  return k;
}

}  // namespace lmstream
