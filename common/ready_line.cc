#include "common/ready_line.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace fngate {

void PrintReadyLine(const std::vector<std::pair<std::string, int>>& ports) {
  std::string line = "READY";
  for (const auto& [name, port] : ports) absl::StrAppend(&line, " ", name, "=", port);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

}  // namespace fngate
