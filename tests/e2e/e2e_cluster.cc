#include "tests/e2e/e2e_cluster.h"

#include <signal.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "tests/support/http_get.h"

#ifndef FNGATE_GATEWAY_BIN
#error "FNGATE_GATEWAY_BIN must be defined by tests/CMakeLists.txt"
#endif

namespace fngate::e2e {

using test_support::Subprocess;
using test_support::WorkerEvent;
using test_support::WsTestClient;

const char* GatewayBinary() { return FNGATE_GATEWAY_BIN; }
const char* EchoFunctionBinary() { return FNGATE_ECHO_FUNCTION_BIN; }
const char* ChatFunctionBinary() { return FNGATE_CHAT_FUNCTION_BIN; }
const char* FaultWorkerBinary() { return FNGATE_FAULT_WORKER_BIN; }

absl::StatusOr<Started> StartAndWaitReady(std::vector<std::string> argv,
                                          const std::vector<std::string>& required_ports) {
  const std::string command = absl::StrJoin(argv, " ");
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(std::move(argv));
  if (!process.ok()) return process.status();
  absl::StatusOr<test_support::ReadyLine> ready = (*process)->WaitForReady(kStartupTimeout);
  if (!ready.ok()) {
    return absl::Status(ready.status().code(),
                        absl::StrCat("`", command, "`: ", ready.status().message()));
  }
  for (const std::string& name : required_ports) {
    if (ready->Port(name) == 0) {
      return absl::FailedPreconditionError(absl::StrCat("`", command, "`: READY line '",
                                                        ready->text(), "' has no port ", name));
    }
  }
  return Started{std::move(*process), *std::move(ready)};
}

namespace {

// `argv` run through /usr/bin/env with `env` added, if there is any.
std::vector<std::string> WithEnv(std::vector<std::string> argv, const ChildEnv& env) {
  if (env.empty()) return argv;
  std::vector<std::string> wrapped = {"/usr/bin/env"};
  wrapped.insert(wrapped.end(), env.begin(), env.end());
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

}  // namespace

absl::StatusOr<Started> StartWorker(const std::string& binary, const std::string& name,
                                    const std::vector<std::string>& flags, const ChildEnv& env) {
  std::vector<std::string> argv = {binary, "--listen=127.0.0.1:0", "--log_events",
                                   absl::StrCat("--name=", name)};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return StartAndWaitReady(WithEnv(std::move(argv), env), {"grpc"});
}

absl::StatusOr<Started> StartEchoWorker(const std::string& name,
                                        const std::vector<std::string>& flags) {
  return StartWorker(EchoFunctionBinary(), name, flags);
}

absl::StatusOr<Started> StartChatWorker(const std::string& name,
                                        const std::vector<std::string>& flags,
                                        const ChildEnv& env) {
  return StartWorker(ChatFunctionBinary(), name, flags, env);
}

absl::StatusOr<Started> StartFaultWorker(const std::string& name,
                                         const std::vector<std::string>& extra,
                                         const std::string& listen) {
  std::vector<std::string> argv = {FaultWorkerBinary(), absl::StrCat("--listen=", listen),
                                   "--log_events", absl::StrCat("--name=", name)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return StartAndWaitReady(std::move(argv), {"grpc"});
}

std::string FunctionFlag(const std::string& name, const std::vector<const Started*>& workers) {
  std::vector<std::string> addresses;
  for (const Started* worker : workers) {
    addresses.push_back(absl::StrCat("127.0.0.1:", worker->ready.Port("grpc")));
  }
  std::string target = absl::StrJoin(addresses, ",");
  if (workers.size() > 1) target = absl::StrCat("ipv4:", target);
  return absl::StrCat("--function=", name, "=", target);
}

absl::StatusOr<Started> StartGateway(const std::vector<std::string>& flags, const ChildEnv& env) {
  std::vector<std::string> argv = {GatewayBinary(),
                                   "--listen=127.0.0.1:0",
                                   "--control_listen=127.0.0.1:0",
                                   "--admin_listen=127.0.0.1:0",
                                   "--io_threads=2",
                                   "--drain_grace_ms=5000"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return StartAndWaitReady(WithEnv(std::move(argv), env), {"ws", "control", "admin"});
}

absl::StatusOr<std::unique_ptr<Subprocess>> RunGatewayRaw(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {GatewayBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Subprocess::Start(std::move(argv));
}

absl::Status Stop(Started& process, absl::Duration timeout) {
  if (!process->Reaped()) {
    absl::Status signalled = process->Signal(SIGTERM);
    if (!signalled.ok()) return signalled;
  }
  absl::StatusOr<int> code = process->Wait(timeout);
  if (!code.ok()) return code.status();
  if (*code != 0) {
    return absl::InternalError(absl::StrCat(process->name(), " exited with ", *code,
                                            " after SIGTERM; output:\n", process->OutputTail()));
  }
  return absl::OkStatus();
}

std::unique_ptr<fngate::v1::GatewayControl::Stub> NewControlStub(const Started& gateway) {
  return fngate::v1::GatewayControl::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", gateway.ready.Port("control")),
                          grpc::InsecureChannelCredentials()));
}

std::unique_ptr<fngate::v1::GatewayControl::Stub> NewControlStub(
    const Started& gateway, const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  return fngate::v1::GatewayControl::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", gateway.ready.Port("control")), credentials));
}

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
}

absl::Status WaitForEvents(const Started& worker, absl::string_view kind, absl::string_view conn,
                           int count, absl::Duration timeout) {
  std::string kind_copy(kind);
  std::string conn_copy(conn);
  absl::Status status = worker->WaitForOutput(
      [&](absl::string_view output) {
        return test_support::CountWorkerEvents(output, kind_copy, conn_copy) >= count;
      },
      timeout);
  if (status.ok()) return status;
  return absl::DeadlineExceededError(
      absl::StrCat("waiting for ", count, " `EVENT kind=", kind, (conn.empty() ? "" : " conn="),
                   conn, "` lines: ", status.message()));
}

std::vector<WorkerEvent> Events(const Started& worker, absl::string_view kind,
                                absl::string_view conn) {
  std::vector<WorkerEvent> events = test_support::ParseWorkerEvents(worker->Output());
  if (kind.empty()) return events;
  return test_support::FilterWorkerEvents(events, kind, conn);
}

absl::StatusOr<std::string> ConnectAndGetId(WsTestClient& client, const Started& gateway,
                                            const Started& worker, absl::string_view target) {
  const int before = test_support::CountWorkerEvents(worker->Output(), "connect");
  absl::Status connected = client.Connect("127.0.0.1", gateway.ready.Port("ws"), target, kIoTimeout);
  if (!connected.ok()) return connected;
  // The connect event is handled before the handshake is answered, so its line is written by
  // now; it may still be on its way through the pipe.
  absl::Status logged = WaitForEvents(worker, "connect", "", before + 1);
  if (!logged.ok()) return logged;
  std::vector<WorkerEvent> connects = Events(worker, "connect");
  if (static_cast<int>(connects.size()) <= before) {
    return absl::InternalError("connect events vanished from the worker log");
  }
  const std::string& id = connects[before].conn;
  if (id.empty()) return absl::InternalError(absl::StrCat("no conn= in '", connects[before].line, "'"));
  return id;
}

absl::StatusOr<std::string> UpgradeRawAndGetId(test_support::RawWsClient& raw,
                                               const Started& worker, absl::string_view target) {
  const int before = test_support::CountWorkerEvents(worker->Output(), "connect");
  absl::StatusOr<test_support::HttpHead> head = raw.Upgrade(target, kIoTimeout);
  if (!head.ok()) return head.status();
  if (head->status != 101) {
    return absl::FailedPreconditionError(
        absl::StrCat("upgrade to ", target, " answered HTTP ", head->status, " ", head->body));
  }
  absl::Status logged = WaitForEvents(worker, "connect", "", before + 1);
  if (!logged.ok()) return logged;
  std::vector<WorkerEvent> connects = Events(worker, "connect");
  if (static_cast<int>(connects.size()) <= before || connects[before].conn.empty()) {
    return absl::InternalError("no connection id in the worker's connect event");
  }
  return connects[before].conn;
}

absl::StatusOr<uint64_t> ReadMetric(const Started& gateway, absl::string_view series) {
  absl::StatusOr<test_support::HttpResponse> response =
      test_support::HttpGet("127.0.0.1", gateway.ready.Port("admin"), "/metrics", kIoTimeout);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::UnavailableError(absl::StrCat("/metrics answered HTTP ", response->status));
  }
  const std::string prefix = absl::StrCat(series, " ");
  for (absl::string_view line : absl::StrSplit(response->body, '\n')) {
    if (!absl::StartsWith(line, prefix)) continue;
    uint64_t value = 0;
    if (!absl::SimpleAtoi(line.substr(prefix.size()), &value)) {
      return absl::InvalidArgumentError(absl::StrCat("not a counter: '", line, "'"));
    }
    return value;
  }
  return absl::NotFoundError(absl::StrCat("no series ", series, " in /metrics"));
}

::testing::AssertionResult HasSingleDisconnect(const std::vector<WorkerEvent>& events,
                                               absl::string_view conn, absl::string_view by,
                                               int code) {
  int disconnects = 0;
  int last_index = -1;
  int disconnect_index = -1;
  const WorkerEvent* disconnect = nullptr;
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].conn != conn) continue;
    last_index = static_cast<int>(i);
    if (events[i].kind == "disconnect") {
      ++disconnects;
      disconnect_index = static_cast<int>(i);
      disconnect = &events[i];
    }
  }
  if (disconnects != 1) {
    return ::testing::AssertionFailure()
           << disconnects << " disconnect events for conn " << conn << " (want exactly 1)";
  }
  if (disconnect_index != last_index) {
    return ::testing::AssertionFailure() << "an event of conn " << conn
                                         << " came after its disconnect: '"
                                         << events[last_index].line << "'";
  }
  if (disconnect->Field("by") != by || disconnect->Field("code") != absl::StrCat(code)) {
    return ::testing::AssertionFailure() << "want by=" << by << " code=" << code << ", got '"
                                         << disconnect->line << "'";
  }
  return ::testing::AssertionSuccess() << disconnect->line;
}

absl::Status EnsureFileLimit(rlim_t wanted) {
  rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return absl::InternalError("getrlimit failed");
  if (limit.rlim_cur >= wanted) return absl::OkStatus();
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted) {
    return absl::FailedPreconditionError(absl::StrCat("RLIMIT_NOFILE hard limit ", limit.rlim_max,
                                                      " is below the ", wanted, " this test needs"));
  }
  limit.rlim_cur = wanted;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return absl::InternalError("setrlimit failed");
  return absl::OkStatus();
}

bool PollUntil(const std::function<bool()>& probe, absl::Duration timeout,
               absl::Duration interval) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (probe()) return true;
    if (absl::Now() + interval > deadline) return false;
    absl::SleepFor(interval);
  }
}

::testing::AssertionResult IsOk(const absl::Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << status;
}

void EchoClusterTest::SetUp() {
  absl::StatusOr<Started> worker = StartEchoWorker();
  ASSERT_TRUE(IsOk(worker));
  worker_ = *std::move(worker);
  absl::StatusOr<Started> gateway = StartGateway({FunctionFlag("echo", {&worker_})});
  ASSERT_TRUE(IsOk(gateway));
  gateway_ = *std::move(gateway);
}

}  // namespace fngate::e2e
