// ControlService::SignUrl (declared in control_service.h): mints a signed client URL with the
// gateway's newest key. Pure computation on immutable state: it answers on the calling thread.
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_util.h"
#include "gateway/control_service.h"

#include "gateway/control_auth.h"
#include "gateway/signed_url.h"

namespace fngate::gateway {
namespace {

constexpr uint32_t kDefaultTtlSeconds = 3600;
// Well under the handshake's header limit, and under what browsers and proxies accept.
constexpr size_t kMaxUrlBytes = 8192;

grpc::Status Invalid(const std::string& field, absl::string_view problem) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(field, ": ", problem));
}

grpc::Status SignUrlNow(GatewayState& state, const v1::SignUrlRequest& request,
                        v1::SignUrlResponse& response) {
  if (request.function().empty()) return Invalid("function", "required");
  if (state.FindFunction(request.function()) < 0) {
    return Invalid("function", absl::StrCat("'", request.function(),
                                            "' is not a function of this gateway"));
  }
  const uint32_t max_ttl = state.settings().signing.max_ttl_seconds;
  const uint32_t ttl =
      request.ttl_seconds() == 0 ? std::min(kDefaultTtlSeconds, max_ttl) : request.ttl_seconds();
  if (ttl > max_ttl) {
    return Invalid("ttl_seconds", absl::StrCat("at most ", max_ttl,
                                               " (signing.max_ttl_seconds), got ", ttl));
  }
  for (const auto& [name, value] : request.query()) {
    if (name.empty()) return Invalid("query", "parameter names cannot be empty");
  }
  if (!state.url_signer().has_keys()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "no signing key is configured (signing.keys)");
  }
  const QueryParams query(request.query().begin(), request.query().end());
  const absl::Time expires_at =
      absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) + static_cast<int64_t>(ttl));
  absl::StatusOr<SignedQuery> signed_query =
      state.url_signer().Sign(request.function(), query, request.user_id(), expires_at);
  if (!signed_query.ok()) return ToGrpcStatus(signed_query.status());
  std::string url = absl::StrCat(state.public_url(), "/",
                                 PercentEncodeStrict(request.function()), "?",
                                 signed_query->query);
  if (url.size() > kMaxUrlBytes) {
    return Invalid("query", absl::StrCat("with user_id, the URL would be ", url.size(),
                                         " bytes; at most ", kMaxUrlBytes));
  }
  response.set_url(std::move(url));
  response.mutable_expires_at()->set_seconds(signed_query->expires_unix_seconds);
  response.set_key_id(signed_query->key_id);
  return grpc::Status::OK;
}

}  // namespace

void ControlService::SignUrl(grpc::ServerContext* context, const v1::SignUrlRequest* request,
                             v1::SignUrlResponse* response, ControlReply* reply) {
  if (grpc::Status s = AuthorizeControlCall(*context, state_); !s.ok()) {
    return reply->Finish(std::move(s));
  }
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  reply->Finish(SignUrlNow(state_, *request, *response));
}

}  // namespace fngate::gateway
