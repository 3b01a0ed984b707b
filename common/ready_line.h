// File: common/ready_line.h
// The one line a fngate binary prints on stdout once every listener is bound:
//   READY ws=41234 control=41235 admin=41236
// Tests and scripts read ports from it instead of guessing; nothing else goes to stdout.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace fngate {

// Formats and prints the line (flushed). Thread-safe.
void PrintReadyLine(const std::vector<std::pair<std::string, int>>& ports);

}  // namespace fngate
