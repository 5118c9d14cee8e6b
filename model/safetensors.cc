// safetensors header parsing and validation (see safetensors.h).
#include "model/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "model/model.h"

namespace lmstream {
namespace {

using nlohmann::json;

int dtype_size(const std::string& d) {
  static const std::map<std::string, int> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U64", 8},     {"U32", 4},
      {"U16", 2}, {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  auto it = sizes.find(d);
  return it == sizes.end() ? 0 : it->second;
}

}  // namespace

SafetensorsHeader parse_safetensors(const uint8_t* data, size_t size, const std::string& name) {
  auto fail = [&](const std::string& what) -> void { throw ModelError(name + ": " + what); };
  if (size < 8)
    fail("truncated file: " + std::to_string(size) + " bytes, too short for a safetensors header");
  uint64_t n;
  std::memcpy(&n, data, 8);
  if (n > kMaxSafetensorsHeader)
    fail("safetensors header length " + std::to_string(n) + " is absurd (limit 100 MB)");
  if (n > size - 8)
    fail("truncated file: safetensors header length " + std::to_string(n) +
         " runs past the end of the file (" + std::to_string(size) + " bytes)");
  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t buf = size - h.data_start;

  std::set<std::string> keys;
  std::string dup;
  bool too_deep = false;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (depth > 16) too_deep = true;
    if (ev == json::parse_event_t::key && depth == 1 &&
        !keys.insert(parsed.get<std::string>()).second && dup.empty())
      dup = parsed.get<std::string>();
    return !too_deep;
  };
  json j;
  try {
    j = json::parse(reinterpret_cast<const char*>(data + 8),
                    reinterpret_cast<const char*>(data + 8 + n), cb);
  } catch (const json::exception& e) {
    fail(std::string("safetensors header is not valid JSON: ") + e.what());
  }
  if (too_deep) fail("safetensors header nests too deeply");
  if (!dup.empty()) fail("safetensors header has duplicate tensor name '" + dup + "'");
  if (!j.is_object()) fail("safetensors header is not a JSON object");

  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& tname = it.key();
    if (tname == "__metadata__") {
      if (!it->is_object()) fail("safetensors __metadata__ is not an object");
      continue;
    }
    const json& e = *it;
    auto bad = [&](const std::string& what) {
      fail("safetensors tensor '" + tname + "': " + what);
    };
    if (!e.is_object()) bad("entry is not an object");
    auto dt = e.find("dtype");
    auto sh = e.find("shape");
    auto off = e.find("data_offsets");
    if (dt == e.end() || !dt->is_string()) bad("missing dtype");
    if (sh == e.end() || !sh->is_array()) bad("missing shape");
    if (off == e.end() || !off->is_array() || off->size() != 2)
      bad("data_offsets must be [begin, end]");
    SafetensorsEntry s;
    s.dtype = dt->get<std::string>();
    int esz = dtype_size(s.dtype);
    if (!esz) bad("unknown dtype '" + s.dtype + "'");
    if (s.dtype == "F32") s.type = DType::F32;
    if (s.dtype == "F16") s.type = DType::F16;
    if (s.dtype == "BF16") s.type = DType::BF16;
    if (sh->size() > 8) bad("too many dimensions");
    uint64_t nelem = 1;
    for (const json& d : *sh) {
      if (!d.is_number_unsigned()) bad("shape entries must be non-negative integers");
      uint64_t v = d.get<uint64_t>();
      if (v > (uint64_t(1) << 40) || (v && nelem > (uint64_t(1) << 50) / v))
        bad("shape is absurdly large");
      nelem *= v;
      s.shape.push_back(int64_t(v));
    }
    for (const json& o : *off)
      if (!o.is_number_unsigned()) bad("data_offsets must be non-negative integers");
    uint64_t b = (*off)[0].get<uint64_t>(), en = (*off)[1].get<uint64_t>();
    if (b > en || en > buf)
      bad("data_offsets [" + std::to_string(b) + ", " + std::to_string(en) +
          ") out of range (data buffer has " + std::to_string(buf) + " bytes)");
    if (en - b != nelem * uint64_t(esz))
      bad("data_offsets span " + std::to_string(en - b) + " bytes but shape and dtype need " +
          std::to_string(nelem * uint64_t(esz)));
    s.begin = h.data_start + b;
    s.end = h.data_start + en;
    h.tensors.emplace(tname, std::move(s));
  }
  return h;
}

}  // namespace lmstream
