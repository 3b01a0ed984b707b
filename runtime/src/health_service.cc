#include "runtime/src/health_service.h"

#include "absl/time/time.h"

namespace fngate::runtime {
namespace {

using grpc::health::v1::HealthCheckResponse;

// How often a Watch with nothing to say looks whether its client left.
constexpr absl::Duration kWatchCancelCheck = absl::Seconds(1);

}  // namespace

void HealthService::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  serving_ = serving;
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  serving_ = false;
  shut_down_ = true;
}

HealthService::Status HealthService::StatusOfLocked(const std::string& service) const {
  if (!service.empty() && service != "fngate.v1.FunctionService") {
    return HealthCheckResponse::SERVICE_UNKNOWN;
  }
  return serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

grpc::Status HealthService::Check(grpc::ServerContext* /*context*/,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  HealthCheckResponse* response) {
  absl::MutexLock lock(&mu_);
  const Status status = StatusOfLocked(request->service());
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service");
  }
  response->set_status(status);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  // True once there is something new to say: a status other than the one sent, or the end.
  struct Changed {
    bool Eval() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return self->shut_down_ || self->StatusOfLocked(*service) != sent;
    }
    HealthService* self;
    const std::string* service;
    Status sent;
  };
  Changed changed{this, &request->service(), HealthCheckResponse::UNKNOWN};
  bool first = true;
  mu_.Lock();
  while (true) {
    const Status now = StatusOfLocked(request->service());
    if (first || now != changed.sent) {
      first = false;
      changed.sent = now;
      HealthCheckResponse response;
      response.set_status(now);
      mu_.Unlock();  // Never write under the lock: a slow client would hold up the others.
      const bool written = writer->Write(response);
      mu_.Lock();
      if (!written) break;  // The client left.
      continue;
    }
    // At the end, the last status (NOT_SERVING) has gone out first.
    if (shut_down_ || context->IsCancelled()) break;
    // Until there is news, or it is time to look whether the client left.
    mu_.AwaitWithTimeout(absl::Condition(&changed, &Changed::Eval), kWatchCancelCheck);
  }
  mu_.Unlock();
  return grpc::Status::OK;
}

}  // namespace fngate::runtime
