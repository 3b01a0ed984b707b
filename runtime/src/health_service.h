// File: runtime/src/health_service.h
// HealthService: the standard grpc.health.v1.Health service of a worker, on the sync API.
//
// Why not gRPC's built-in one (EnableDefaultHealthCheckService): in gRPC 1.51 it is a callback
// service, and any callback service starts the callback API's two threads, which then take
// turns polling every connection of the process and wake on every event stream batch. The
// worker's Events streams have one thread of their own (function_service.h); keeping the
// callback threads away roughly halves a small event's wake-ups.
//
// Knows two names: "" (the worker as a whole) and "fngate.v1.FunctionService"; both SERVING
// until SetServing(false) (the drain). Check answers NOT_FOUND for any other name; Watch
// sends SERVICE_UNKNOWN for it and waits, as the protocol says. Watches end at Shutdown().
// Thread-safe.
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace fngate::runtime {

class HealthService final : public grpc::health::v1::Health::Service {
 public:
  void SetServing(bool serving) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends every Watch (they return OK), so that the server's shutdown need not cancel them.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // grpc::health::v1::Health::Service
  grpc::Status Check(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::health::v1::HealthCheckResponse* response) override;
  grpc::Status Watch(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;
  Status StatusOfLocked(const std::string& service) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = true;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace fngate::runtime
