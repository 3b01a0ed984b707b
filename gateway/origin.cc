#include "gateway/origin.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace fngate::gateway {

absl::StatusOr<std::string> NormalizeOrigin(std::string_view origin_in) {
  std::string origin = absl::AsciiStrToLower(absl::string_view(origin_in.data(), origin_in.size()));
  if (!origin.empty() && origin.back() == '/') origin.pop_back();
  const size_t scheme_end = origin.find("://");
  const bool ok = scheme_end != std::string::npos && scheme_end > 0 &&
                  scheme_end + 3 < origin.size() &&
                  origin.find_first_of("/?#@ ", scheme_end + 3) == std::string::npos;
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", absl::string_view(origin_in.data(), origin_in.size()),
        "' is not an origin: expected scheme://host[:port], e.g. https://app.example.com"));
  }
  return origin;
}

bool OriginAllowed(const std::vector<std::string>& allowed, std::string_view origin) {
  if (allowed.empty()) return true;
  if (origin.empty()) return false;
  std::string lower = absl::AsciiStrToLower(absl::string_view(origin.data(), origin.size()));
  for (const std::string& entry : allowed) {
    if (entry == lower) return true;
  }
  return false;
}

}  // namespace fngate::gateway
