#include "gateway/control_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <string_view>

#include "absl/strings/match.h"
#include "common/log.h"
#include "gateway/gateway_state.h"

namespace fngate::gateway {
namespace {

constexpr std::string_view kBearer = "bearer ";

// SHA-256 of both sides, compared with CRYPTO_memcmp: the time taken tells neither where the
// first difference is nor how long the expected token is.
bool SameSecret(std::string_view presented, std::string_view expected) {
  unsigned char a[EVP_MAX_MD_SIZE];
  unsigned char b[EVP_MAX_MD_SIZE];
  unsigned int a_len = 0;
  unsigned int b_len = 0;
  if (EVP_Digest(presented.data(), presented.size(), a, &a_len, EVP_sha256(), nullptr) != 1 ||
      EVP_Digest(expected.data(), expected.size(), b, &b_len, EVP_sha256(), nullptr) != 1 ||
      a_len != b_len) {
    return false;
  }
  return CRYPTO_memcmp(a, b, a_len) == 0;
}

}  // namespace

grpc::Status AuthorizeControlCall(const grpc::ServerContextBase& context,
                                  const GatewayState& state) {
  const std::string& token = state.settings().control_token;
  if (token.empty()) return grpc::Status::OK;
  const auto [begin, end] = context.client_metadata().equal_range("authorization");
  for (auto it = begin; it != end; ++it) {
    const std::string_view value(it->second.data(), it->second.size());
    // The scheme is case-insensitive (RFC 7235 section 2.1).
    if (value.size() > kBearer.size() &&
        absl::EqualsIgnoreCase(absl::string_view(value.data(), kBearer.size()),
                               absl::string_view(kBearer.data(), kBearer.size())) &&
        SameSecret(value.substr(kBearer.size()), token)) {
      return grpc::Status::OK;
    }
  }
  // The peer, never what it presented: a near-miss token is still a secret.
  FNGATE_LOG(Debug) << "control call from " << context.peer() << " refused: "
                    << (begin == end ? "no bearer token" : "wrong bearer token");
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      "control calls need the metadata 'authorization: Bearer <control token>'");
}

}  // namespace fngate::gateway
