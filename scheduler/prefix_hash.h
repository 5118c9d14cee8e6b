// Prefix-cache keys: a SHA-256 hash chain over KV blocks (vLLM's automatic prefix caching). The
// root digest covers everything besides the tokens that changes the K/V (the cache namespace: the
// model's identity, KV dtype and block size) and the request's cache_salt; each full block's
// digest covers its parent's digest and its own token ids. The pool's index key is the digest's
// first 8 bytes; hits are verified on the token ids (block_pool.h), never on the key alone.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace lmstream {

using BlockDigest = std::array<uint8_t, 32>;

// The digest a request's first block chains from.
BlockDigest prefix_root(const std::string& cache_namespace, const std::string& salt);
// The digest of a block: SHA-256(parent digest || token ids as little-endian int32).
BlockDigest prefix_block(const BlockDigest& parent, std::span<const int32_t> tokens);
// The index key: the digest's first 8 bytes.
uint64_t prefix_key(const BlockDigest& d);

}  // namespace lmstream
