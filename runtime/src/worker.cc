// Worker and RunWorker (worker.h): the gRPC server around FunctionServiceImpl, the READY line,
// and the SIGTERM/SIGINT drain.
#include "fngate/runtime/worker.h"

#include <pthread.h>

#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/process.h"
#include "common/ready_line.h"
#include "runtime/src/function_service.h"
#include "runtime/src/gateway_client_impl.h"
#include "runtime/src/handler_pool.h"
#include "runtime/src/health_service.h"

namespace fngate::runtime {
namespace {

// Past the grace, Shutdown() still waits for handlers that ignore cancellation. This much later
// the process gives up on them rather than hang a deployment's rollout.
constexpr absl::Duration kStuckHandlerSlack = absl::Seconds(2);

// Blocks the calling thread until SIGTERM or SIGINT arrives; returns which. The signals are
// blocked in every thread (BlockShutdownSignals), so they wait here as pending signals: nothing
// runs in a signal handler.
int WaitForShutdownSignal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int signal = 0;
  while (sigwait(&signals, &signal) != 0) {
  }
  return signal;
}

absl::Status ReadPemFile(const char* flag, const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": cannot read '", path, "': ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  out = text.str();
  return absl::OkStatus();
}

// Plaintext unless a certificate is configured; with a client CA, mutual TLS.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const WorkerOptions& options) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty() &&
      options.tls_client_ca_file.empty()) {
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both --tls_cert and --tls_key (--tls_client_ca adds mutual TLS)");
  }
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  if (absl::Status s = ReadPemFile("tls_cert", options.tls_cert_file, pair.cert_chain); !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadPemFile("tls_key", options.tls_key_file, pair.private_key); !s.ok()) {
    return s;
  }
  grpc::SslServerCredentialsOptions ssl(
      options.tls_client_ca_file.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!options.tls_client_ca_file.empty()) {
    if (absl::Status s =
            ReadPemFile("tls_client_ca", options.tls_client_ca_file, ssl.pem_root_certs);
        !s.ok()) {
      return s;
    }
  }
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

// Worker

Worker::Worker(std::unique_ptr<HandlerPool> handlers, std::unique_ptr<FunctionServiceImpl> service,
               std::unique_ptr<HealthService> health, std::unique_ptr<grpc::Server> server,
               int port)
    : handlers_(std::move(handlers)),
      service_(std::move(service)),
      health_(std::move(health)),
      server_(std::move(server)),
      port_(port) {}

Worker::~Worker() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<std::unique_ptr<Worker>> Worker::Start(Function& function,
                                                      const WorkerOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentials(options);
  if (!credentials.ok()) return credentials.status();
  if (absl::Status s = SetSharedGatewayCredentials(options.gateway_credentials); !s.ok()) {
    return s;
  }
  auto handlers = options.handler_threads > 0
                      ? std::make_unique<HandlerPool>(options.handler_threads)
                      : nullptr;
  auto service = std::make_unique<FunctionServiceImpl>(
      function, options.log_events, options.gateway_address, handlers.get());
  // Our own health service, not gRPC's (see health_service.h). Reflection is a sync service;
  // the switch is process-wide and affects servers built after it.
  auto health = std::make_unique<HealthService>();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen_address, *credentials, &port);
  builder.RegisterService(service.get());
  builder.RegisterService(health.get());
  std::unique_ptr<grpc::ServerCompletionQueue> events_cq = builder.AddCompletionQueue();
  builder.SetMaxReceiveMessageSize(options.max_event_bytes);
  // gRPC sets SO_REUSEPORT by default: a second worker on a taken port would start fine and
  // silently take half the calls. Fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Gateways ping every 20 s to notice dead hosts; gRPC's default server policy would answer
  // such pings on a quiet connection with GOAWAY (too_many_pings).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    if (server != nullptr) server->Shutdown();
    events_cq->Shutdown();  // Nothing was asked of it; it must only be shut before it goes.
    return absl::UnavailableError(absl::StrCat(
        "cannot serve on ", options.listen_address,
        options.tls_cert_file.empty()
            ? " (port in use, or not an address of this machine)"
            : " (port in use, not an address of this machine, or --tls_cert/--tls_key are not "
              "a PEM certificate and its key)"));
  }
  service->Serve(std::move(events_cq));
  return std::unique_ptr<Worker>(
      new Worker(std::move(handlers), std::move(service), std::move(health), std::move(server),
                 port));
}

void Worker::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mutex_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  // Health checks answer NOT_SERVING from now on, so probes stop sending traffic here; their
  // watches end, so that they do not hold up the server's shutdown.
  health_->Shutdown();
  // Gateways move their new events elsewhere; what they already sent is still handled.
  service_->StartDrain();
  server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(grace));
  server_->Wait();
  service_->StopStreams();
}

// RunWorker

int RunWorker(Function& function, const WorkerOptions& options) {
  // Before Worker::Start creates gRPC's threads, so that they inherit the mask.
  BlockShutdownSignals();
  PrepareServerProcess();
  if (absl::StatusOr<log::Level> level = log::ParseLevel(options.log_level); level.ok()) {
    log::SetLevel(*level);
  } else {
    FNGATE_LOG(Warning) << "log_level: " << level.status().message() << "; using info";
  }
  const std::string who = options.name.empty() ? "worker" : options.name;

  absl::StatusOr<std::unique_ptr<Worker>> worker = Worker::Start(function, options);
  if (!worker.ok()) {
    FNGATE_LOG(Error) << who << ": " << worker.status().message();
    return 1;
  }
  FNGATE_LOG(Info) << who << ": serving fngate.v1.FunctionService on " << options.listen_address
                   << " (port " << (*worker)->port() << ")";
  PrintReadyLine({{"grpc", (*worker)->port()}});

  // The signal thread does the drain; this thread only watches that the drain ends in time.
  absl::Notification drain_started;
  absl::Notification drained;
  std::thread signal_thread([&] {
    const int signal = WaitForShutdownSignal();
    FNGATE_LOG(Info) << who << ": " << (signal == SIGTERM ? "SIGTERM" : "SIGINT")
                     << ", draining for up to " << absl::FormatDuration(options.shutdown_grace);
    drain_started.Notify();
    (*worker)->Shutdown(options.shutdown_grace);
    drained.Notify();
  });
  drain_started.WaitForNotification();
  if (!drained.WaitForNotificationWithTimeout(options.shutdown_grace + kStuckHandlerSlack)) {
    FNGATE_LOG(Error) << who << ": handlers still running "
                      << absl::FormatDuration(options.shutdown_grace + kStuckHandlerSlack)
                      << " after the signal; exiting without them";
    std::_Exit(1);
  }
  signal_thread.join();
  FNGATE_LOG(Info) << who << ": stopped";
  return 0;
}

}  // namespace fngate::runtime
