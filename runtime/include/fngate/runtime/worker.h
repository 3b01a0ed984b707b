// File: fngate/runtime/worker.h
// Serving a Function: the gRPC FunctionService (proto/fngate/v1/function.proto) the gateway
// calls, plus the standard worker command line, READY line and SIGTERM drain.
//
// A whole worker:
//
//   int main(int argc, char** argv) {
//     fngate::runtime::WorkerOptions options = fngate::runtime::InitWorker(argc, argv);
//     MyFunction function;
//     return fngate::runtime::RunWorker(function, options);
//   }
//
// Command line (InitWorker):
//   --listen=HOST:PORT    where to serve; default 127.0.0.1:7001; port 0 picks a free port
//   --gateway=HOST:PORT   control service used by Context::Gateway() when an event names none
//   --log_events          one stderr line per event received (EVENT kind=... conn=... ...)
//   --name=NAME           replica name for the logs
//   --log_level=LEVEL     debug, info (default), warning, error
//   --handler_threads=N   threads that run handlers for batched event streams (default 4)
//   --tls_cert=FILE --tls_key=FILE   serve TLS (PEM); with --tls_client_ca=FILE, mutual TLS:
//                         gateways must present a certificate that CA signed
//   --gateway_token=TOKEN | --gateway_token_file=FILE   control token for Context::Gateway();
//                         default: the environment variable FNGATE_TOKEN (keeps it out of `ps`)
//   --gateway_tls_ca=FILE  TLS to the gateways' control service, trusting this CA;
//                         --gateway_tls_cert/--gateway_tls_key=FILE for mutual TLS,
//                         --gateway_tls_server_name=NAME to expect another name
//   --help                usage on stdout, exit 0
// Value flags take `--flag=value` or `--flag value`. Anything else: a message on stderr and
// exit code 2.
//
// Once the port is bound the worker prints exactly one stdout line `READY grpc=<port>`; logs go
// to stderr. It also serves the standard gRPC health service (grpc.health.v1.Health) and server
// reflection. On SIGTERM or SIGINT it stops taking calls, lets in-flight calls finish for up to
// WorkerOptions::shutdown_grace, and RunWorker returns 0.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fngate/runtime/function.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace fngate::runtime {

class FunctionServiceImpl;  // runtime/src/function_service.h
class HandlerPool;          // runtime/src/handler_pool.h
class HealthService;        // runtime/src/health_service.h

struct WorkerOptions {
  // "host:port" to serve on; port 0 picks a free one (Worker::port() tells which).
  std::string listen_address = "127.0.0.1:7001";
  // Default gateway control address for Context::Gateway() ("" for none).
  std::string gateway_address;
  // Log one `EVENT ...` line on stderr per event received.
  bool log_events = false;
  // Replica name shown in the worker's own log lines.
  std::string name;
  // Level of the worker's own log lines: "debug", "info", "warning" or "error". RunWorker
  // applies it.
  std::string log_level = "info";
  // How long in-flight calls may run on after SIGTERM before they are cancelled.
  absl::Duration shutdown_grace = absl::Seconds(5);
  // Largest event the worker accepts, in bytes (gRPC's default, 4 MiB, is below what a gateway
  // may be configured to forward).
  int max_event_bytes = 64 << 20;
  // Events that arrive batched on the gateway's Events streams are handled one batch per
  // stream at a time, in order, on a pool of this many threads, so a handler may block.
  // 0 runs them directly on gRPC's threads: one thread switch less per batch, for functions
  // whose handlers never block (no sync calls, no sleeps, no disk). Unary calls always run on
  // gRPC's sync-server threads.
  int handler_threads = 4;
  // TLS for the FunctionService the gateways call (PEM files): cert and key turn it on; with a
  // client CA, a gateway must present a certificate it signed (mutual TLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Credentials of the clients Context::Gateway() returns. Process-wide: Worker::Start sets
  // them (the last Worker started wins), before it serves.
  GatewayCredentials gateway_credentials;
};

// Parses the flags listed at the top of this file (argv[0] is the program name), starting from
// the environment variable FNGATE_TOKEN for the gateway token (a flag overrides it). Returns
// INVALID_ARGUMENT naming the flag for an unknown flag, a missing or malformed value, or a
// positional argument. `--help` is not handled here (InitWorker does): it is an unknown flag.
absl::StatusOr<WorkerOptions> ParseWorkerFlags(int argc, const char* const* argv);

// The usage text `--help` prints.
std::string WorkerUsage(const char* program);

// The first call in a worker's main(), before anything starts a thread (creating a
// GatewayClient starts gRPC's threads): blocks SIGTERM and SIGINT in the calling thread so that
// every thread started later inherits the mask and only RunWorker's signal thread takes them,
// and parses the flags. On `--help` prints usage on stdout and exits 0; on a bad command line
// prints the problem on stderr and exits 2.
WorkerOptions InitWorker(int argc, char** argv);

// Blocks SIGTERM and SIGINT in the calling thread (and the threads it starts later).
// InitWorker and RunWorker call it; a main that does not use InitWorker calls it first thing.
void BlockShutdownSignals();

// Serves `function` until SIGTERM or SIGINT, then drains (see top of file). Prints the READY line
// once serving. Returns the process exit code: 0 after the drain, 1 if the server could not
// start (the reason is logged). A handler still running 2 s after the grace ran out ends the
// process at once with exit code 1 (logged): a stuck handler must not block a rollout.
// A dedicated thread waits for the signals with sigwait(); no code runs in a signal handler.
// Call once per process, from main.
int RunWorker(Function& function, const WorkerOptions& options);

// A FunctionService server without the process concerns (no READY line, no signals): for tests
// and for programs that embed a worker. Thread-safe.
class Worker {
 public:
  // Starts serving `function`, which must outlive the Worker. UNAVAILABLE if the address
  // cannot be bound, INVALID_ARGUMENT if a TLS file cannot be read.
  static absl::StatusOr<std::unique_ptr<Worker>> Start(Function& function,
                                                       const WorkerOptions& options);
  // Shuts down with no grace if Shutdown() was not called.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The bound port.
  int port() const { return port_; }

  // Stops taking calls and waits for in-flight calls to finish; when `grace` runs out they are
  // cancelled, and it still waits for their handlers to return. Later calls do nothing.
  // Never call it from a handler: it would wait for itself.
  void Shutdown(absl::Duration grace) ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  Worker(std::unique_ptr<HandlerPool> handlers, std::unique_ptr<FunctionServiceImpl> service,
         std::unique_ptr<HealthService> health, std::unique_ptr<grpc::Server> server, int port);

  // Declared before server_: the server is destroyed first, while the service and the
  // handler threads still exist.
  std::unique_ptr<HandlerPool> handlers_;
  std::unique_ptr<FunctionServiceImpl> service_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> server_;
  const int port_;
  absl::Mutex mutex_;
  bool shut_down_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace fngate::runtime
