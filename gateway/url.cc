#include "gateway/url.h"

#include "absl/strings/str_split.h"

namespace fngate::gateway {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      const int hi = HexValue(text[i + 1]);
      const int lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

RequestTarget ParseRequestTarget(std::string_view target) {
  RequestTarget out;
  const size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  out.path = std::string(path);
  std::string_view rest = path;
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  out.function = PercentDecode(rest.substr(0, rest.find('/')), /*plus_is_space=*/false);
  if (question == std::string_view::npos) return out;
  const std::string_view query = target.substr(question + 1);
  for (absl::string_view part :
       absl::StrSplit(absl::string_view(query.data(), query.size()), '&', absl::SkipEmpty())) {
    const size_t eq = part.find('=');
    const absl::string_view key = part.substr(0, eq);
    const absl::string_view value = eq == absl::string_view::npos ? "" : part.substr(eq + 1);
    out.query.emplace_back(PercentDecode(std::string_view(key.data(), key.size()), true),
                           PercentDecode(std::string_view(value.data(), value.size()), true));
  }
  return out;
}

}  // namespace fngate::gateway
