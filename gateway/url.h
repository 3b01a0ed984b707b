// File: gateway/url.h
// The bits of a request target the gateway reads: path, function name, query parameters.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fngate::gateway {

struct RequestTarget {
  std::string path;      // "/chat/room" (no query)
  std::string function;  // "chat": the first path segment, percent-decoded
  std::vector<std::pair<std::string, std::string>> query;  // In order, percent-decoded.
};

// Splits "/chat?room=a%20b&x" into its parts ("x" gets an empty value; '+' is a space).
RequestTarget ParseRequestTarget(std::string_view target);

// Percent-decoding; malformed escapes are kept as they are.
std::string PercentDecode(std::string_view text, bool plus_is_space);

}  // namespace fngate::gateway
