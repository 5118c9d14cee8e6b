// The instance types a ProductionVariant may name (botocore's enum; see instance_types.cc).
#pragma once

#include <string_view>
#include <vector>

namespace lmstream::control {

const std::vector<std::string_view>& instance_types();

}  // namespace lmstream::control
