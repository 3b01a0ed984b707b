// File: tests/e2e/e2e_cluster.h
// Building blocks of the end-to-end tests: start the real `fngate`, `echo_function` and
// `chat_function` binaries (paths from FNGATE_*_BIN compile definitions), talk to the control
// service, and read the workers' `--log_events` lines.
//
//   absl::StatusOr<Started> worker = StartEchoWorker("echo");
//   absl::StatusOr<Started> gateway = StartGateway({FunctionFlag("echo", {&*worker})});
//   WsTestClient client;
//   absl::StatusOr<std::string> id = ConnectAndGetId(client, *gateway, *worker, "/echo");
//
// Every process binds port 0 and reports its ports on its READY line, so tests never guess
// ports and may run in parallel. Every wait takes an explicit timeout.
//
// Thread safety: functions are thread-safe unless they say otherwise; Started is not.
#pragma once

#include <sys/resource.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fngate/v1/control.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/support/raw_ws_client.h"
#include "tests/support/subprocess.h"
#include "tests/support/worker_events.h"
#include "tests/support/ws_test_client.h"

namespace fngate::e2e {

// Process start-up up to the READY line.
inline constexpr absl::Duration kStartupTimeout = absl::Seconds(15);
// One WebSocket or gRPC operation.
inline constexpr absl::Duration kIoTimeout = absl::Seconds(5);
// An event to show up in a worker's log, a close to arrive after a failed call.
inline constexpr absl::Duration kEventTimeout = absl::Seconds(10);
// A process to exit after SIGTERM (the gateway's drain grace in these tests is 5 s).
inline constexpr absl::Duration kExitTimeout = absl::Seconds(15);

// A started child process and its parsed READY line. Destroying it stops the process
// (SIGTERM, then SIGKILL) and reaps it.
struct Started {
  std::unique_ptr<test_support::Subprocess> process;
  test_support::ReadyLine ready;

  test_support::Subprocess* operator->() const { return process.get(); }
  test_support::Subprocess& operator*() const { return *process; }
};

const char* GatewayBinary();
const char* EchoFunctionBinary();
const char* ChatFunctionBinary();
// tests/e2e/workers/fault_worker.cc: echo that misbehaves on command (see its header).
const char* FaultWorkerBinary();

// Starts `argv` and waits for its READY line, which must name every port in `required_ports`.
absl::StatusOr<Started> StartAndWaitReady(std::vector<std::string> argv,
                                          const std::vector<std::string>& required_ports);

// Environment entries ("NAME=VALUE") a child gets on top of the test's own: it is started
// through /usr/bin/env, so the test process never calls setenv() while gRPC threads run.
using ChildEnv = std::vector<std::string>;

// A worker binary with --listen=127.0.0.1:0 --log_events --name=<name>, then `flags`; its READY
// line has `grpc`.
absl::StatusOr<Started> StartWorker(const std::string& binary, const std::string& name,
                                    const std::vector<std::string>& flags = {},
                                    const ChildEnv& env = {});
absl::StatusOr<Started> StartEchoWorker(const std::string& name = "echo",
                                        const std::vector<std::string>& flags = {});
absl::StatusOr<Started> StartChatWorker(const std::string& name = "chat",
                                        const std::vector<std::string>& flags = {},
                                        const ChildEnv& env = {});
// A fault worker listening on `listen` ("127.0.0.1:0", or a port it had before, to restart a
// replica in place), with --log_events --name=<name> and `extra` flags.
absl::StatusOr<Started> StartFaultWorker(const std::string& name,
                                         const std::vector<std::string>& extra = {},
                                         const std::string& listen = "127.0.0.1:0");

// "--function=<name>=<target>" for the given started workers: one worker gives
// "127.0.0.1:<port>", several give "ipv4:127.0.0.1:<p1>,127.0.0.1:<p2>" (round robin).
std::string FunctionFlag(const std::string& name, const std::vector<const Started*>& workers);

// fngate with all three listeners on 127.0.0.1 port 0, --io_threads=2, --drain_grace_ms=5000,
// then `flags` (e.g. FunctionFlag(...)). Its READY line has `ws`, `control` and `admin`.
absl::StatusOr<Started> StartGateway(const std::vector<std::string>& flags,
                                     const ChildEnv& env = {});

// fngate with exactly `args` (no defaults added), for start-up failure tests.
absl::StatusOr<std::unique_ptr<test_support::Subprocess>> RunGatewayRaw(
    const std::vector<std::string>& args);

// SIGTERM, then waits for the exit; OK only if the exit code is 0.
absl::Status Stop(Started& process, absl::Duration timeout = kExitTimeout);

// A stub for the gateway's control service (insecure channel to 127.0.0.1:<control>).
std::unique_ptr<fngate::v1::GatewayControl::Stub> NewControlStub(const Started& gateway);
// The same over `credentials` (e.g. grpc::SslCredentials for a TLS control port).
std::unique_ptr<fngate::v1::GatewayControl::Stub> NewControlStub(
    const Started& gateway, const std::shared_ptr<grpc::ChannelCredentials>& credentials);
// Sets a deadline of now + `timeout` on a control call.
void SetDeadline(grpc::ClientContext& context, absl::Duration timeout = kIoTimeout);

// Waits until `worker` has logged at least `count` EVENT lines of `kind` (for connection `conn`
// unless empty).
absl::Status WaitForEvents(const Started& worker, absl::string_view kind, absl::string_view conn,
                           int count, absl::Duration timeout = kEventTimeout);
// Parsed EVENT lines of `worker` so far, optionally only those of `kind` and `conn`.
std::vector<test_support::WorkerEvent> Events(const Started& worker, absl::string_view kind = "",
                                              absl::string_view conn = "");

// Connects `client` to ws://127.0.0.1:<ws>/<target> and returns the connection id the worker
// logged for it (the next `EVENT kind=connect` line). Connections to one worker must be opened
// one at a time for the ids to match.
absl::StatusOr<std::string> ConnectAndGetId(test_support::WsTestClient& client,
                                            const Started& gateway, const Started& worker,
                                            absl::string_view target);

// As ConnectAndGetId, for a RawWsClient that is already TCP-connected: sends the upgrade
// request and fails unless the answer is 101.
absl::StatusOr<std::string> UpgradeRawAndGetId(test_support::RawWsClient& raw,
                                               const Started& worker, absl::string_view target);

// The value of one series of the gateway's /metrics, e.g.
// `fngate_limit_hits_total{function="echo",kind="rate"}`; NOT_FOUND if it is not there.
absl::StatusOr<uint64_t> ReadMetric(const Started& gateway, absl::string_view series);

// Checks that `events` (one worker's log) hold exactly one disconnect for `conn`, with the given
// `by=` and `code=`, and that nothing of that connection was logged after it.
::testing::AssertionResult HasSingleDisconnect(const std::vector<test_support::WorkerEvent>& events,
                                               absl::string_view conn, absl::string_view by,
                                               int code);

// Raises the soft RLIMIT_NOFILE to at least `wanted` (capped by the hard limit). Children
// started afterwards inherit it.
absl::Status EnsureFileLimit(rlim_t wanted);

// Calls `probe` until it returns true or `timeout` passes, pausing `interval` between calls.
// For states only observable by asking (HTTP readiness), not as a substitute for event waits.
bool PollUntil(const std::function<bool()>& probe, absl::Duration timeout,
               absl::Duration interval = absl::Milliseconds(20));

// gtest helpers: status as assertion results with their message.
::testing::AssertionResult IsOk(const absl::Status& status);
template <typename T>
::testing::AssertionResult IsOk(const absl::StatusOr<T>& status_or) {
  return IsOk(status_or.status());
}

// Fixture: a fresh echo worker and a gateway routing /echo to it, for each test. Members are
// destroyed in reverse order: the gateway stops before the worker.
class EchoClusterTest : public ::testing::Test {
 protected:
  void SetUp() override;

  Started worker_;
  Started gateway_;
};

}  // namespace fngate::e2e
