#include "tests/support/ws_test_client.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <variant>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

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
  using PlainWs = websocket::stream<tcp::socket>;
  using TlsWs = websocket::stream<beast::ssl_stream<tcp::socket>>;

  // `tls`: wss:// with this context; null: ws://.
  explicit Impl(std::unique_ptr<net::ssl::context> tls = nullptr)
      : tls_context(std::move(tls)), ws(MakeWs()) {}

  net::io_context ioc{1};
  std::unique_ptr<net::ssl::context> tls_context;  // Declared before `ws`: outlives it.
  std::variant<PlainWs, TlsWs> ws;
  beast::flat_buffer buffer;
  websocket::response_type response;
  bool open = false;

  std::variant<PlainWs, TlsWs> MakeWs() {
    if (tls_context == nullptr) return std::variant<PlainWs, TlsWs>(std::in_place_index<0>, ioc);
    return std::variant<PlainWs, TlsWs>(std::in_place_index<1>, ioc, *tls_context);
  }

  // Calls `f(stream)` with the WebSocket stream, plain or TLS.
  template <typename F>
  decltype(auto) Visit(F&& f) {
    return std::visit(std::forward<F>(f), ws);
  }

  tcp::socket& socket() {
    return Visit([](auto& stream) -> tcp::socket& { return beast::get_lowest_layer(stream); });
  }

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
  std::unique_ptr<net::ssl::context> tls;
  if (!options.tls_ca_file.empty()) {
    tls = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
    error_code ca_error;
    tls->load_verify_file(options.tls_ca_file, ca_error);
    if (ca_error) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls_ca_file ", options.tls_ca_file, ": ", ca_error.message()));
    }
    if (!options.tls_cert_file.empty()) {
      tls->use_certificate_chain_file(options.tls_cert_file, ca_error);
      if (!ca_error) {
        tls->use_private_key_file(options.tls_key_file, net::ssl::context::pem, ca_error);
      }
      if (ca_error) {
        return absl::InvalidArgumentError(
            absl::StrCat("tls_cert_file/tls_key_file: ", ca_error.message()));
      }
    }
    tls->set_verify_mode(net::ssl::verify_peer);
    tls->set_verify_callback(net::ssl::host_name_verification(std::string(host)));
  }
  impl_ = std::make_unique<Impl>(std::move(tls));  // A fresh stream for every attempt.
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
  if (auto* tls = std::get_if<Impl::TlsWs>(&impl_->ws)) {
    done = false;
    tls->next_layer().async_handshake(net::ssl::stream_base::client, [&](error_code e) {
      result = e;
      done = true;
    });
    if (!impl_->Run(done, deadline - absl::Now())) {
      return absl::DeadlineExceededError(absl::StrCat("TLS handshake with ", where, " timed out"));
    }
    if (result) {
      impl_->CloseSocket();
      return absl::UnavailableError(absl::StrCat("TLS handshake with ", where, ": ",
                                                 result.message()));
    }
  }
  impl_->Visit([&](auto& ws) {
    ws.read_message_max(kMaxMessageBytes);
    if (options.permessage_deflate) {
      websocket::permessage_deflate deflate;
      deflate.client_enable = true;
      ws.set_option(deflate);
    }
    ws.set_option(websocket::stream_base::decorator(
        [subprotocols = options.subprotocols,
         headers = options.headers](websocket::request_type& req) {
          if (!subprotocols.empty()) {
            req.set(beast::http::field::sec_websocket_protocol,
                    absl::StrJoin(subprotocols, ", "));
          }
          for (const auto& [name, value] : headers) req.set(name, value);
        }));
    done = false;
    ws.async_handshake(impl_->response, absl::StrCat(host, ":", port), std::string(target),
                       [&](error_code e) {
                         result = e;
                         done = true;
                       });
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

std::string WsTestClient::PeerCertificatePem() const {
  auto* tls = std::get_if<Impl::TlsWs>(&impl_->ws);
  if (tls == nullptr) return "";
  X509* cert = SSL_get1_peer_certificate(tls->next_layer().native_handle());
  if (cert == nullptr) return "";
  std::string pem;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    if (PEM_write_bio_X509(bio, cert) == 1) {
      char* data = nullptr;
      const long size = BIO_get_mem_data(bio, &data);
      pem.assign(data, static_cast<size_t>(size));
    }
    BIO_free(bio);
  }
  X509_free(cert);
  return pem;
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
  bool done = false;
  error_code result;
  impl_->Visit([&](auto& ws) {
    ws.binary(binary);
    ws.async_write(net::buffer(data.data(), data.size()), [&](error_code e, size_t) {
      result = e;
      done = true;
    });
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
  impl_->Visit([&](auto& ws) {
    ws.async_read(impl_->buffer, [&](error_code e, size_t) {
      result = e;
      done = true;
    });
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
      (result && impl_->Visit([](auto& ws) { return ws.reason().code; }) !=
                     websocket::close_code::none);
  if (got_close_frame) {
    // Beast answered the peer's close frame and ended the TCP connection.
    if (result != websocket::error::closed) impl_->CloseSocket();
    impl_->open = false;
    const websocket::close_reason reason =
        impl_->Visit([](auto& ws) { return ws.reason(); });
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
  message.is_binary = impl_->Visit([](auto& ws) { return ws.got_binary(); });
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
  impl_->Visit([&](auto& ws) {
    ws.async_close(websocket::close_reason(static_cast<websocket::close_code>(code),
                                           beast::string_view(reason.data(), reason.size())),
                   [&](error_code e) {
                     result = e;
                     done = true;
                   });
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
