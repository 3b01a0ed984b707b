#include "gateway/secret.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace fngate::gateway {

absl::StatusOr<std::string> ReadSecret(const config::v1::Secret& secret) {
  if (!secret.file().empty() && !secret.env().empty()) {
    return absl::InvalidArgumentError("set either file or env, not both");
  }
  std::string value;
  if (!secret.file().empty()) {
    std::ifstream in(secret.file(), std::ios::binary);
    if (!in) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read the secret file '", secret.file(), "': ", std::strerror(errno)));
    }
    std::stringstream text;
    text << in.rdbuf();
    value = text.str();
    absl::StripTrailingAsciiWhitespace(&value);
    if (value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("the secret file '", secret.file(), "' is empty"));
    }
  } else if (!secret.env().empty()) {
    const char* env = std::getenv(secret.env().c_str());
    if (env == nullptr || *env == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("the environment variable '", secret.env(), "' is not set or empty"));
    }
    value = env;
  }
  return value;
}

}  // namespace fngate::gateway
