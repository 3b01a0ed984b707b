#include "gateway/gateway.h"

#include <csignal>

#include <boost/asio/post.hpp>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "gateway/session.h"
#include "gateway/tls.h"

namespace fngate::gateway {

namespace net = boost::asio;

namespace {

// Base of signed URLs: signing.public_url, else the bound WebSocket address (a wildcard host
// becomes loopback, as for control_advertise: set public_url for clients on other hosts).
std::string PublicUrl(const GatewaySettings& s, int ws_port) {
  if (!s.signing.public_url.empty()) return s.signing.public_url;
  std::string host = s.listen.host;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = absl::StrCat("[", host, "]");
  return absl::StrCat(s.signing.default_scheme, "://", host, ":", ws_port);
}

}  // namespace

Gateway::Gateway(GatewaySettings settings, std::unique_ptr<grpc::ServerCompletionQueue> cq)
    : completions_(std::make_unique<CompletionQueueThread>(std::move(cq))),
      state_(std::move(settings),
             [this](absl::AnyInvocable<void()> task) { net::post(io_, std::move(task)); },
             completions_->cq()),
      work_(net::make_work_guard(io_)),
      strand_(net::make_strand(io_)),
      signals_(strand_, SIGTERM, SIGINT),
      reload_signals_(strand_, SIGHUP),
      grace_timer_(strand_) {}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(GatewaySettings settings) {
  // One completion queue for every gRPC call of the gateway: the control server's, which the
  // event streams share (see completion_queue_thread.h).
  grpc::ServerBuilder builder;
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  grpc::ServerCompletionQueue* const control_cq = cq.get();
  std::unique_ptr<Gateway> gw(new Gateway(std::move(settings), std::move(cq)));
  const GatewaySettings& s = gw->state_.settings();
  if (s.tls.enabled()) {
    absl::StatusOr<std::unique_ptr<ServerTlsContext>> tls = ServerTlsContext::Create(s.tls);
    if (!tls.ok()) return tls.status();
    gw->state_.set_tls(*std::move(tls));
  }

  absl::StatusOr<net::ip::tcp::acceptor> ws = BindAcceptor(gw->strand_, s.listen);
  if (!ws.ok()) return ws.status();
  absl::StatusOr<net::ip::tcp::acceptor> admin = BindAcceptor(gw->strand_, s.admin_listen);
  if (!admin.ok()) return admin.status();
  gw->listener_ =
      std::make_shared<Listener>(gw->io_, std::move(*ws), StartSessions(gw->state_));
  gw->admin_ = std::make_shared<Listener>(gw->io_, std::move(*admin), ServeAdmin(gw->state_));

  gw->control_service_ = std::make_unique<ControlService>(gw->state_);
  const std::string control_address =
      absl::StrCat(s.control_listen.host.find(':') != std::string::npos
                       ? absl::StrCat("[", s.control_listen.host, "]")
                       : s.control_listen.host,
                   ":", s.control_listen.port);
  builder.AddListeningPort(control_address, GrpcServerCredentials(s.control_tls),
                           &gw->control_port_);
  uint64_t max_message_bytes = s.limits.max_message_bytes;  // Functions may allow more.
  for (const FunctionSettings& f : s.functions) {
    max_message_bytes = std::max(max_message_bytes, f.limits.max_message_bytes);
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<uint64_t>(
      INT32_MAX, std::max<uint64_t>(4u << 20, 2 * max_message_bytes + (64 << 10)))));
  builder.RegisterService(gw->control_service_->service());
  gw->control_server_ = builder.BuildAndStart();
  if (gw->control_server_ == nullptr || gw->control_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", control_address, " (control service)"));
  }
  gw->control_service_->Serve(control_cq);
  std::string advertise = s.control_advertise;
  if (advertise.empty()) {
    std::string host = s.control_listen.host;
    if (host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";
    advertise = absl::StrCat(host.find(':') != std::string::npos ? "[" + host + "]" : host, ":",
                             gw->control_port_);
  }
  gw->state_.set_control_advertise(advertise);
  gw->state_.set_public_url(PublicUrl(s, gw->ws_port()));
  return gw;
}

Gateway::~Gateway() {
  if (!threads_.empty()) {
    io_.stop();
    for (std::thread& t : threads_) t.join();
  }
}

void Gateway::Run() {
  signals_.async_wait([this](boost::system::error_code ec, int) {
    if (!ec) OnSignal();
  });
  WaitForReloadSignal();
  listener_->Start();
  admin_->Start();
  net::post(strand_, [this] {
    keepalive_timers_.resize(state_.function_count());
    for (size_t i = 0; i < state_.function_count(); ++i) ArmKeepalive(i);
  });
  const GatewaySettings& s = state_.settings();
  FNGATE_LOG(Info) << "fngate serving WebSocket" << (s.tls.enabled() ? " (wss)" : "") << " on "
                   << s.listen.host << ":" << ws_port()
                   << ", control on " << state_.control_advertise() << ", admin on "
                   << s.admin_listen.host << ":" << admin_port() << ", " << s.io_threads
                   << " io threads, " << s.functions.size() << " functions";
  for (uint32_t i = 0; i < s.io_threads; ++i) threads_.emplace_back([this] { io_.run(); });

  ServeReloadsUntilDone();

  // The io threads still run here: posted completions must reach their sessions.
  FNGATE_LOG(Info) << "stopping: " << state_.live() << " connections not yet reported";
  control_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(250));
  for (size_t i = 0; i < state_.function_count(); ++i) {
    state_.function(static_cast<int>(i)).Shutdown(std::chrono::seconds(2));
  }
  // Every event call now fails at once, so the sessions still owing a disconnect (say, one
  // whose message was stuck in a worker) get through error and disconnect in a few handler
  // runs, each reporting a lost disconnect by connection id. Let them, briefly: after
  // io_.stop() nothing would.
  for (int i = 0; i < 100 && state_.live() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (state_.live() > 0) {
    FNGATE_LOG(Warning) << state_.live() << " connections stopped without a disconnect event";
  }
  // Wait for this last step, so that io_.stop() cannot drop it.
  absl::Notification quiet;
  net::post(strand_, [this, &quiet] {
    admin_->Stop();
    signals_.cancel();
    reload_signals_.cancel();
    grace_timer_.cancel();
    for (auto& timer : keepalive_timers_) {
      if (timer != nullptr) timer->cancel();
    }
    quiet.Notify();
  });
  quiet.WaitForNotificationWithTimeout(absl::Seconds(2));
  work_.reset();
  io_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  FNGATE_LOG(Info) << "stopped";
}

void Gateway::ArmKeepalive(size_t function) {
  const FunctionClient& f = state_.function(static_cast<int>(function));
  const std::chrono::milliseconds idle = f.settings().limits.idle_timeout;
  if (idle.count() == 0) return;
  auto& timer = keepalive_timers_[function];
  if (timer == nullptr) timer = std::make_unique<net::steady_timer>(strand_);
  timer->expires_after(idle / 2);
  timer->async_wait([this, function](boost::system::error_code ec) {
    if (ec) return;
    const std::string& name = state_.function(static_cast<int>(function)).settings().name;
    for (const std::shared_ptr<Session>& session : state_.table().Snapshot(name)) {
      session->KeepaliveTick();
    }
    ArmKeepalive(function);
  });
}

void Gateway::Stop() {
  net::post(strand_, [this] { OnSignal(); });
}

void Gateway::NotifyDone() {
  if (done_notified_.exchange(true)) return;
  done_.Notify();
  absl::MutexLock wake(&reload_mu_);  // Run() waits on this mutex's condition.
}

void Gateway::WaitForReloadSignal() {
  reload_signals_.async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    {
      absl::MutexLock lock(&reload_mu_);
      reload_requested_ = true;
    }
    WaitForReloadSignal();
  });
}

// The main thread has nothing else to do: reading files here blocks no io thread.
void Gateway::ServeReloadsUntilDone() {
  absl::MutexLock lock(&reload_mu_);
  while (true) {
    reload_mu_.Await(absl::Condition(
        +[](Gateway* gw) { return gw->reload_requested_ || gw->done_.HasBeenNotified(); }, this));
    if (done_.HasBeenNotified()) return;
    reload_requested_ = false;
    reload_mu_.Unlock();
    ReloadTls();
    reload_mu_.Lock();
  }
}

void Gateway::ReloadTls() {
  ServerTlsContext* tls = state_.tls();
  if (tls == nullptr) {
    FNGATE_LOG(Info) << "SIGHUP: no tls configured, nothing to reload";
    return;
  }
  if (absl::Status s = tls->Reload(); !s.ok()) {
    FNGATE_LOG(Error) << "SIGHUP: tls not reloaded, new connections keep the previous "
                         "certificate: tls."
                      << s.message();
    return;
  }
  FNGATE_LOG(Info) << "SIGHUP: tls reloaded; new connections get " << tls->Describe();
}

void Gateway::OnSignal() {
  if (++stop_requests_ == 1) {
    BeginDrain();
    signals_.async_wait([this](boost::system::error_code ec, int) {
      if (!ec) OnSignal();
    });
  } else {
    FNGATE_LOG(Warning) << "second stop request: not waiting for the drain";
    NotifyDone();
  }
}

void Gateway::BeginDrain() {
  const auto grace = state_.settings().drain_grace;
  FNGATE_LOG(Info) << "draining: closing " << state_.table().size()
                   << " connections with 1001, grace " << grace.count() << " ms";
  listener_->Stop();
  state_.StartDrain([this] { NotifyDone(); });
  for (const std::shared_ptr<Session>& session : state_.table().Snapshot()) {
    session->Drain();
  }
  grace_timer_.expires_after(grace);
  grace_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    FNGATE_LOG(Warning) << "drain grace ran out with " << state_.live()
                        << " connections not yet reported";
    NotifyDone();
  });
}

}  // namespace fngate::gateway
