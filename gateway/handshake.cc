#include "gateway/handshake.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace fngate::gateway {

std::vector<std::string> SplitSubprotocols(std::string_view header) {
  std::vector<std::string> out;
  for (absl::string_view p : absl::StrSplit(absl::string_view(header.data(), header.size()), ',',
                                            absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(p));
  }
  return out;
}

}  // namespace fngate::gateway
