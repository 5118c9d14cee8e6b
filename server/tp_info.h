// What /info says about tensor parallelism: the degree and each rank's shard, in rank order. Set
// once by the model backend on rank 0 when the engine is built (the degree is a property of the
// process: every rank of the job serves one model).
#pragma once

#include <string>
#include <vector>

namespace lmstream::server {

struct TpInfo {
  int degree = 1;
  std::vector<std::string> shards;  // empty without tensor parallelism
};

TpInfo tp_info();
void set_tp_info(TpInfo info);

}  // namespace lmstream::server
