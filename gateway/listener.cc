#include "gateway/listener.h"

#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "gateway/lingering_close.h"
#include "gateway/session.h"

namespace fngate::gateway {

namespace net = boost::asio;
using tcp = net::ip::tcp;

absl::StatusOr<tcp::acceptor> BindAcceptor(const net::any_io_executor& executor,
                                           const HostPort& address) {
  boost::system::error_code ec;
  const net::ip::address ip = net::ip::make_address(address.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot listen on ", address.host, ":", address.port,
                     ": not an IP address (", ec.message(), ")"));
  }
  const tcp::endpoint endpoint(ip, address.port);
  tcp::acceptor acceptor(executor);
  auto fail = [&](const char* what) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address.host, ":",
                                               address.port, ": ", what, ": ", ec.message()));
  };
  if (acceptor.open(endpoint.protocol(), ec)) return fail("open");
  if (acceptor.set_option(net::socket_base::reuse_address(true), ec)) return fail("setsockopt");
  if (acceptor.bind(endpoint, ec)) return fail("bind");
  if (acceptor.listen(net::socket_base::max_listen_connections, ec)) return fail("listen");
  return acceptor;
}

Listener::Listener(net::io_context& io, tcp::acceptor acceptor, OnAccept on_accept)
    : io_(io),
      acceptor_(std::move(acceptor)),
      retry_timer_(acceptor_.get_executor()),
      on_accept_(std::move(on_accept)),
      port_(acceptor_.local_endpoint().port()) {}

void Listener::Start() { Accept(); }

void Listener::Stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  retry_timer_.cancel();
}

void Listener::Accept() {
  acceptor_.async_accept(net::make_strand(io_),
                         [self = shared_from_this()](boost::system::error_code ec,
                                                     tcp::socket socket) {
                           self->Accepted(ec, std::move(socket));
                         });
}

void Listener::Accepted(boost::system::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;  // Stopped.
  if (ec) {
    // Typically EMFILE: back off briefly instead of spinning on the error.
    FNGATE_LOG(Warning) << "accept on port " << port_ << " failed: " << ec.message();
    retry_timer_.expires_after(std::chrono::milliseconds(50));
    retry_timer_.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
      if (!wait_ec) self->Accept();
    });
    return;
  }
  // With Nagle on, a message of several segments waits for an ACK (tens of milliseconds).
  socket.set_option(tcp::no_delay(true), ec);
  on_accept_(std::move(socket));
  Accept();
}

Listener::OnAccept StartSessions(GatewayState& state) {
  return [&state](tcp::socket socket) {
    if (state.TryAddSocket()) {
      std::make_shared<Session>(std::move(socket), state)->Start();
      return;
    }
    state.metrics().CountHandshakeRefusal(503);
    state.metrics().CountLimitHit(-1, LimitKind::kMaxConnections);
    if (state.tls() != nullptr) return;  // No TLS yet to say it in: closing is the answer.
    static constexpr char kFull[] =
        "HTTP/1.1 503 Service Unavailable\r\nServer: fngate\r\nContent-Length: 24\r\n"
        "Connection: close\r\n\r\nfngate: at capacity now\n";
    auto held = std::make_shared<tcp::socket>(std::move(socket));
    net::async_write(*held, net::buffer(kFull, sizeof(kFull) - 1),
                     [held, &state](boost::system::error_code, size_t) {
                       LingeringClose(std::move(*held), state.settings().limits.handshake_timeout);
                     });
  };
}

}  // namespace fngate::gateway
