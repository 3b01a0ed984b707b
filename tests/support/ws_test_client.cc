#include "tests/support/ws_test_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/support/asio_wait.h"

namespace fngate::test_support {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

constexpr int kAbnormalClosure = 1006;
constexpr int kNoStatusReceived = 1005;

}  // namespace

struct WsTestClient::Impl {
  net::io_context ioc{1};
  websocket::stream<tcp::socket> ws{ioc};
  beast::flat_buffer buffer;
  websocket::response_type response;
  bool open = false;

  tcp::socket& socket() { return ws.next_layer(); }

  void CloseSocket() {
    error_code ignored;
    socket().close(ignored);
    open = false;
  }

  // Runs until `done` or `timeout`; on timeout the socket is closed.
  bool Run(const bool& done, absl::Duration timeout) {
    return RunUntilDone(ioc, done, timeout, [this] { CloseSocket(); });
  }
};

WsTestClient::WsTestClient() : impl_(std::make_unique<Impl>()) {}

WsTestClient::~WsTestClient() {
  if (impl_ != nullptr) impl_->CloseSocket();
}

absl::Status WsTestClient::Connect(absl::string_view host, int port, absl::string_view target,
                                   absl::Duration timeout, const WsConnectOptions& options) {
  if (impl_->open) return absl::FailedPreconditionError("already connected");
  impl_ = std::make_unique<Impl>();  // A fresh stream for every attempt.
  handshake_status_ = 0;
  handshake_body_.clear();
  close_code_.reset();
  close_reason_.clear();
  dropped_messages_ = 0;
  const absl::Time deadline = absl::Now() + timeout;

  error_code ec;
  net::ip::address address = net::ip::make_address(std::string(host), ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("not an IP address: ", host));
  const std::string where = absl::StrCat(host, ":", port, target);

  bool done = false;
  error_code result;
  impl_->socket().async_connect(tcp::endpoint(address, static_cast<uint16_t>(port)),
                                [&](error_code e) {
                                  result = e;
                                  done = true;
                                });
  if (!impl_->Run(done, deadline - absl::Now())) {
    return absl::DeadlineExceededError(absl::StrCat("TCP connect to ", where, " timed out"));
  }
  if (result) {
    impl_->CloseSocket();
    return absl::UnavailableError(absl::StrCat("TCP connect to ", where, ": ", result.message()));
  }
  impl_->socket().set_option(tcp::no_delay(true), ec);
  impl_->ws.read_message_max(kMaxMessageBytes);
  if (options.permessage_deflate) {
    websocket::permessage_deflate deflate;
    deflate.client_enable = true;
    impl_->ws.set_option(deflate);
  }
  impl_->ws.set_option(websocket::stream_base::decorator(
      [subprotocols = options.subprotocols, headers = options.headers](websocket::request_type& req) {
        if (!subprotocols.empty()) {
          req.set(beast::http::field::sec_websocket_protocol, absl::StrJoin(subprotocols, ", "));
        }
        for (const auto& [name, value] : headers) req.set(name, value);
      }));

  done = false;
  impl_->ws.async_handshake(impl_->response, absl::StrCat(host, ":", port), std::string(target),
                            [&](error_code e) {
                              result = e;
                              done = true;
                            });
  if (!impl_->Run(done, deadline - absl::Now())) {
    return absl::DeadlineExceededError(absl::StrCat("WebSocket handshake with ", where, " timed out"));
  }
  handshake_status_ = impl_->response.result_int();
  handshake_body_ = impl_->response.body();
  if (result == websocket::error::upgrade_declined) {
    impl_->CloseSocket();
    return absl::FailedPreconditionError(absl::StrCat("handshake with ", where, " declined: HTTP ",
                                                      handshake_status_, " ", handshake_body_));
  }
  if (result) {
    impl_->CloseSocket();
    return absl::UnavailableError(
        absl::StrCat("WebSocket handshake with ", where, ": ", result.message()));
  }
  impl_->open = true;
  return absl::OkStatus();
}

std::string WsTestClient::HandshakeHeader(absl::string_view name) const {
  auto it = impl_->response.find(beast::string_view(name.data(), name.size()));
  if (it == impl_->response.end()) return "";
  return std::string(it->value());
}

absl::Status WsTestClient::SendText(absl::string_view text, absl::Duration timeout) {
  return Send(text, /*binary=*/false, timeout);
}

absl::Status WsTestClient::SendBinary(absl::string_view data, absl::Duration timeout) {
  return Send(data, /*binary=*/true, timeout);
}

absl::Status WsTestClient::Send(absl::string_view data, bool binary, absl::Duration timeout) {
  if (!impl_->open) return absl::FailedPreconditionError("send: connection is not open");
  impl_->ws.binary(binary);
  bool done = false;
  error_code result;
  impl_->ws.async_write(net::buffer(data.data(), data.size()), [&](error_code e, size_t) {
    result = e;
    done = true;
  });
  if (!impl_->Run(done, timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("sending ", data.size(), " bytes timed out after ", absl::FormatDuration(timeout)));
  }
  if (result == websocket::error::closed) {
    impl_->open = false;
    return absl::FailedPreconditionError("send: connection closed");
  }
  if (result) {
    impl_->CloseSocket();
    return absl::UnavailableError(absl::StrCat("send: ", result.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<WsMessage> WsTestClient::Read(absl::Duration timeout) {
  if (!impl_->open) {
    return absl::FailedPreconditionError(
        close_code_.has_value() ? absl::StrCat("read: connection closed with code ", *close_code_,
                                               " reason '", close_reason_, "'")
                                : "read: connection is not open");
  }
  impl_->buffer.clear();
  bool done = false;
  error_code result;
  impl_->ws.async_read(impl_->buffer, [&](error_code e, size_t) {
    result = e;
    done = true;
  });
  if (!impl_->Run(done, timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("no message within ", absl::FormatDuration(timeout)));
  }
  // A peer that fails the connection (RFC 6455 section 7.1.7: too big, protocol error, ...)
  // sends its close frame and closes the socket without waiting for our answer; Beast then
  // reports the failed answer, yet the close frame and its code did arrive.
  const bool got_close_frame =
      result == websocket::error::closed ||
      (result && impl_->ws.reason().code != websocket::close_code::none);
  if (got_close_frame) {
    // Beast answered the peer's close frame and ended the TCP connection.
    if (result != websocket::error::closed) impl_->CloseSocket();
    impl_->open = false;
    const websocket::close_reason& reason = impl_->ws.reason();
    close_code_ = reason.code == websocket::close_code::none ? kNoStatusReceived
                                                              : static_cast<int>(reason.code);
    close_reason_ = std::string(reason.reason.data(), reason.reason.size());
    return absl::FailedPreconditionError(absl::StrCat("connection closed by peer with code ",
                                                      *close_code_, " reason '", close_reason_, "'"));
  }
  if (result) {
    impl_->CloseSocket();
    close_code_ = kAbnormalClosure;
    return absl::UnavailableError(
        absl::StrCat("connection broke without a close frame: ", result.message()));
  }
  WsMessage message;
  message.is_binary = impl_->ws.got_binary();
  message.data = beast::buffers_to_string(impl_->buffer.data());
  return message;
}

absl::StatusOr<int> WsTestClient::WaitForClose(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<WsMessage> message = Read(deadline - absl::Now());
    if (message.ok()) {
      ++dropped_messages_;
      continue;
    }
    if (close_code_.has_value()) return *close_code_;
    return message.status();
  }
}

absl::Status WsTestClient::Close(int code, absl::string_view reason, absl::Duration timeout) {
  if (!impl_->open) return absl::FailedPreconditionError("close: connection is not open");
  bool done = false;
  error_code result;
  impl_->ws.async_close(
      websocket::close_reason(static_cast<websocket::close_code>(code), beast::string_view(reason.data(), reason.size())),
      [&](error_code e) {
        result = e;
        done = true;
      });
  if (!impl_->Run(done, timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("close handshake not finished within ", absl::FormatDuration(timeout)));
  }
  impl_->CloseSocket();
  if (result) return absl::UnavailableError(absl::StrCat("close: ", result.message()));
  return absl::OkStatus();
}

void WsTestClient::Abort() {
  error_code ignored;
  tcp::socket& socket = impl_->socket();
  if (socket.is_open()) {
    // Linger with a zero timeout turns close() into a TCP reset: no close frame, no FIN.
    socket.set_option(net::socket_base::linger(true, 0), ignored);
  }
  impl_->CloseSocket();
}

bool WsTestClient::IsOpen() const { return impl_->open; }

}  // namespace fngate::test_support
