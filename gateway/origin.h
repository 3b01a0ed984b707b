// File: gateway/origin.h
// The per-function Origin allow-list (FunctionConfig.allowed_origins): browsers send the page's
// origin with every WebSocket handshake, so a function listing its origins cannot be opened by
// pages of other sites with the visitor's cookies (cross-site WebSocket hijacking).
//
//   absl::StatusOr<std::string> o = NormalizeOrigin("HTTPS://App.Example.com/");  // config
//   OriginAllowed({*o}, "https://app.example.com");                                // true
//
// An empty list allows any request. Otherwise the request's Origin header must be listed; a
// request without one is refused too (clients that are not browsers can send it). Comparison
// is exact after lower-casing (RFC 6454: scheme and host are case-insensitive), so
// "https://example.com" does not admit "https://example.com:8443" nor subdomains. Pure
// functions: thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace fngate::gateway {

// An allow-list entry in canonical form: "scheme://host[:port]", lower case, no trailing '/'.
// INVALID_ARGUMENT for anything with a path, query, user info or no host.
absl::StatusOr<std::string> NormalizeOrigin(std::string_view origin);

// `allowed` holds NormalizeOrigin() results; `origin` is the request's header ("" if none).
bool OriginAllowed(const std::vector<std::string>& allowed, std::string_view origin);

}  // namespace fngate::gateway
