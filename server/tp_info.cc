// The process's tensor-parallel facts for /info (see tp_info.h).
#include "server/tp_info.h"

#include <mutex>

namespace lmstream::server {
namespace {
std::mutex mu;
TpInfo current;
}  // namespace

TpInfo tp_info() {
  std::lock_guard<std::mutex> lk(mu);
  return current;
}

void set_tp_info(TpInfo info) {
  std::lock_guard<std::mutex> lk(mu);
  current = std::move(info);
}

}  // namespace lmstream::server
