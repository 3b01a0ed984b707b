// File: gateway/client_stream.h
// ClientStream: the byte stream under a client's WebSocket -- plain TCP (ws://) or TLS over
// TCP (wss://), chosen per connection at run time, as one type.
//
//   websocket::stream<ClientStream> ws(std::move(socket), tls_context);  // null: plain
//   if (ws.next_layer().is_tls()) ws.next_layer().async_handshake(on_tls_handshake);
//   beast::get_lowest_layer(ws).expires_after(...);   // the TCP stream, either way
//
// Why a run-time switch at this layer, and not two Session types: Session, the WebSocket
// framing and every handler above stay one compiled type (no template over the session, no
// visit at each of its ~20 calls to the stream), so the plain path runs exactly the code it
// ran before plus one predictable branch per socket read or write, and a plain connection
// costs 8 more bytes. A TLS connection's state lives behind one pointer.
//
// Thread safety: as the streams it wraps (one strand per connection).
#pragma once

#include <memory>
#include <utility>
#include <variant>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace fngate::gateway {

class ClientStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;

  // TLS when `tls` is set; the stream keeps the context alive (a reload may replace it).
  ClientStream(boost::asio::ip::tcp::socket&& socket,
               std::shared_ptr<boost::asio::ssl::context> tls)
      : stream_(Make(std::move(socket), std::move(tls))) {}

  bool is_tls() const { return stream_.index() == kTls; }

  executor_type get_executor() noexcept { return next_layer().get_executor(); }

  // The TCP stream under TLS or not: what beast::get_lowest_layer() finds, for timeouts and
  // closing the socket.
  boost::beast::tcp_stream& next_layer() noexcept {
    if (auto* tls = std::get_if<kTls>(&stream_)) return (*tls)->stream.next_layer();
    return std::get<kPlain>(stream_);
  }

  // The TLS server handshake. TLS streams only.
  template <class Handler>
  void async_handshake(Handler&& handler) {
    std::get<kTls>(stream_)->stream.async_handshake(boost::asio::ssl::stream_base::server,
                                                    std::forward<Handler>(handler));
  }

  template <class MutableBufferSequence, class ReadHandler>
  void async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    if (auto* tls = std::get_if<kTls>(&stream_)) {
      (*tls)->stream.async_read_some(buffers, std::forward<ReadHandler>(handler));
    } else {
      std::get<kPlain>(stream_).async_read_some(buffers, std::forward<ReadHandler>(handler));
    }
  }

  template <class ConstBufferSequence, class WriteHandler>
  void async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    if (auto* tls = std::get_if<kTls>(&stream_)) {
      (*tls)->stream.async_write_some(buffers, std::forward<WriteHandler>(handler));
    } else {
      std::get<kPlain>(stream_).async_write_some(buffers, std::forward<WriteHandler>(handler));
    }
  }

  // How websocket::stream ends the connection after the close handshake: TLS close_notify
  // first for wss://, then the TCP shutdown.
  template <class TeardownHandler>
  friend void async_teardown(boost::beast::role_type role, ClientStream& stream,
                             TeardownHandler&& handler) {
    using boost::beast::websocket::async_teardown;
    if (auto* tls = std::get_if<kTls>(&stream.stream_)) {
      async_teardown(role, (*tls)->stream, std::forward<TeardownHandler>(handler));
    } else {
      async_teardown(role, std::get<kPlain>(stream.stream_),
                     std::forward<TeardownHandler>(handler));
    }
  }
  friend void teardown(boost::beast::role_type role, ClientStream& stream,
                       boost::beast::error_code& ec) {
    using boost::beast::websocket::teardown;
    if (auto* tls = std::get_if<kTls>(&stream.stream_)) {
      teardown(role, (*tls)->stream, ec);
    } else {
      teardown(role, std::get<kPlain>(stream.stream_), ec);
    }
  }

 private:
  struct Tls {
    Tls(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<boost::asio::ssl::context> c)
        : context(std::move(c)), stream(std::move(socket), *context) {}
    std::shared_ptr<boost::asio::ssl::context> context;  // Declared first: outlives `stream`.
    boost::beast::ssl_stream<boost::beast::tcp_stream> stream;
  };
  using Variant = std::variant<boost::beast::tcp_stream, std::unique_ptr<Tls>>;
  static constexpr size_t kPlain = 0;
  static constexpr size_t kTls = 1;

  static Variant Make(boost::asio::ip::tcp::socket&& socket,
                      std::shared_ptr<boost::asio::ssl::context> tls) {
    if (tls == nullptr) return Variant(std::in_place_index<kPlain>, std::move(socket));
    return Variant(std::in_place_index<kTls>,
                   std::make_unique<Tls>(std::move(socket), std::move(tls)));
  }

  Variant stream_;
};

}  // namespace fngate::gateway
