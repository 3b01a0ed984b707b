// File: gateway/gateway.h
// Gateway: the whole `fngate` process. Owns the io_context and its threads, the WebSocket
// listener, the admin server, the control gRPC server and the shared GatewayState.
//
//   absl::StatusOr<std::unique_ptr<Gateway>> gw = Gateway::Create(settings);  // binds ports
//   PrintReadyLine(...(*gw)->ws_port()...);
//   (*gw)->Run();  // until SIGTERM/SIGINT (or Stop()) has drained
//
// Shutdown order (SIGTERM, or Stop()): stop accepting; /readyz turns 503; every client is
// closed with 1001 after what is queued to it; once every disconnect event is delivered, or
// the drain grace runs out, the control server stops, event calls still in flight are
// cancelled, then the io threads. A second signal skips the wait.
//
// SIGHUP re-reads the wss:// certificate and key (tls.cert_file, tls.key_file): new
// connections get them, open ones keep theirs; files that do not load leave the old ones in
// place, and the log says why.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <grpcpp/server.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gateway/admin_server.h"
#include "common/completion_queue_thread.h"
#include "gateway/config.h"
#include "gateway/control_service.h"
#include "gateway/gateway_state.h"
#include "gateway/listener.h"

namespace fngate::gateway {

class Gateway {
 public:
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(GatewaySettings settings);
  ~Gateway();

  int ws_port() const { return listener_->port(); }
  int control_port() const { return control_port_; }
  int admin_port() const { return admin_->port(); }

  // Serves until drained. Call once, from the main thread (not an io thread).
  void Run();

  // Any thread: the first call starts the drain, a second one stops at once.
  void Stop();

 private:
  // `cq`: the control server's queue, which the event streams share (one gRPC thread).
  Gateway(GatewaySettings settings, std::unique_ptr<grpc::ServerCompletionQueue> cq);
  void OnSignal();     // On strand_.
  void BeginDrain();   // On strand_.
  void NotifyDone();   // Any thread; wakes Run() once.
  void WaitForReloadSignal();    // On strand_: SIGHUP asks Run()'s thread to reload TLS.
  void ServeReloadsUntilDone();  // Run()'s thread.
  void ReloadTls();              // Run()'s thread.
  void ArmKeepalive(size_t function);  // On strand_: the next tick of its connections.

  // Every gRPC completion of the gateway (control calls, event streams) runs on its one thread.
  // First member: it outlives everything that makes calls.
  std::unique_ptr<CompletionQueueThread> completions_;
  GatewayState state_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  // Signals, the grace timer, the drain callback, the acceptors: one strand, so the
  // start/stop logic never runs on two threads at once.
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::signal_set signals_;
  boost::asio::signal_set reload_signals_;
  boost::asio::steady_timer grace_timer_;
  // One per function with an idle timeout: ticks its connections' keepalive
  // (Session::KeepaliveTick), so that no connection holds a timer of its own.
  std::vector<std::unique_ptr<boost::asio::steady_timer>> keepalive_timers_;
  std::shared_ptr<Listener> listener_;
  std::shared_ptr<Listener> admin_;
  std::unique_ptr<ControlService> control_service_;
  std::unique_ptr<grpc::Server> control_server_;
  int control_port_ = 0;
  std::vector<std::thread> threads_;
  int stop_requests_ = 0;  // On strand_ only.
  std::atomic<bool> done_notified_{false};
  absl::Notification done_;
  absl::Mutex reload_mu_;
  bool reload_requested_ ABSL_GUARDED_BY(reload_mu_) = false;
};

}  // namespace fngate::gateway
