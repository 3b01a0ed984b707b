// End to end: a worker's grpc.health.v1.Health service (the runtime's own, on the sync API).
// - Check: SERVING for the worker ("") and for fngate.v1.FunctionService; NOT_FOUND for a
//   service it does not serve.
// - Watch: SERVING at once; on SIGTERM the watch hears NOT_SERVING and ends with OK (the
//   service ends its watches itself), and the worker exits 0.
// - An unknown service's watch hears SERVICE_UNKNOWN.
#include <signal.h>

#include <memory>
#include <string>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

std::unique_ptr<Health::Stub> HealthStub(const Started& worker) {
  return Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", worker.ready.Port("grpc")), grpc::InsecureChannelCredentials()));
}

grpc::Status Check(Health::Stub& stub, const std::string& service, HealthCheckResponse& out) {
  grpc::ClientContext context;
  SetDeadline(context);
  HealthCheckRequest request;
  request.set_service(service);
  return stub.Check(&context, request, &out);
}

TEST(WorkerHealthE2eTest, CheckKnowsTheWorkerAndItsService) {
  absl::StatusOr<Started> worker = StartEchoWorker();
  ASSERT_TRUE(IsOk(worker));
  std::unique_ptr<Health::Stub> stub = HealthStub(*worker);
  for (const std::string service : {"", "fngate.v1.FunctionService"}) {
    HealthCheckResponse response;
    grpc::Status status = Check(*stub, service, response);
    ASSERT_TRUE(status.ok()) << "'" << service << "': " << status.error_message();
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING) << "'" << service << "'";
  }
  HealthCheckResponse response;
  EXPECT_EQ(Check(*stub, "no.such.Service", response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(WorkerHealthE2eTest, WatchHearsTheDrainEndWithOkAndTheWorkerExitsCleanly) {
  absl::StatusOr<Started> worker = StartEchoWorker();
  ASSERT_TRUE(IsOk(worker));
  std::unique_ptr<Health::Stub> stub = HealthStub(*worker);
  grpc::ClientContext context;
  SetDeadline(context, kExitTimeout);
  HealthCheckRequest request;
  auto watch = stub->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  ASSERT_TRUE(IsOk((*worker)->Signal(SIGTERM)));
  ASSERT_TRUE(watch->Read(&response)) << (*worker)->OutputTail();
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(watch->Read(&response));
  grpc::Status status = watch->Finish();
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  // Our connection goes too: a server waits (up to its grace) for connected clients to leave.
  watch.reset();
  stub.reset();
  absl::StatusOr<int> exit_code = (*worker)->Wait(kExitTimeout);
  ASSERT_TRUE(IsOk(exit_code));
  EXPECT_EQ(*exit_code, 0) << (*worker)->OutputTail();
}

TEST(WorkerHealthE2eTest, WatchOfAnUnknownServiceSaysSo) {
  absl::StatusOr<Started> worker = StartEchoWorker();
  ASSERT_TRUE(IsOk(worker));
  std::unique_ptr<Health::Stub> stub = HealthStub(*worker);
  grpc::ClientContext context;
  SetDeadline(context);
  HealthCheckRequest request;
  request.set_service("no.such.Service");
  auto watch = stub->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  context.TryCancel();
}

}  // namespace
}  // namespace fngate::e2e
