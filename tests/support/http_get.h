// File: tests/support/http_get.h
// HttpGet(): one plain HTTP/1.1 GET with a timeout, for the gateway's admin endpoints
// (/healthz, /readyz, /metrics). Thread-safe: every call uses its own io_context and socket.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fngate::test_support {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string content_type;
};

// GET http://host:port<target> (host is an IP address). Any HTTP status is an OK result;
// errors are DEADLINE_EXCEEDED (timeout), UNAVAILABLE (connect/read failed) or INVALID_ARGUMENT.
absl::StatusOr<HttpResponse> HttpGet(absl::string_view host, int port, absl::string_view target,
                                     absl::Duration timeout);

}  // namespace fngate::test_support
