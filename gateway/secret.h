// File: gateway/secret.h
// ReadSecret(): the value of a config Secret (proto fngate.config.v1.Secret), read once at
// start-up from a file or an environment variable.
//
//   absl::StatusOr<std::string> token = ReadSecret(config.control_token());
//   // "" when the Secret names neither a file nor a variable.
//
// A file's trailing whitespace (the newline `echo token > file` leaves) is not part of the
// secret. Errors name the file or the variable, never the value. Callers never log the value.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "fngate/config/v1/gateway_config.pb.h"

namespace fngate::gateway {

// INVALID_ARGUMENT when both `file` and `env` are set, the file cannot be read, the variable is
// unset, or the value is empty.
absl::StatusOr<std::string> ReadSecret(const config::v1::Secret& secret);

}  // namespace fngate::gateway
