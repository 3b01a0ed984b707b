// File: gateway/client_stream.h
// ClientStream: the byte stream under a client's WebSocket -- a plain TCP socket (ws://) or
// TLS over it (wss://), chosen per connection at run time, as one type.
//
//   ClientStream stream(std::move(socket), tls_context);   // null context: plain
//   if (stream.is_tls()) stream.async_handshake(on_tls_handshake);
//   net::async_write(stream, buffers, on_written);           // either way
//   stream.socket().async_wait(tcp::socket::wait_read, ...);  // plain: readiness, no buffer
//
// Why a run-time switch, and not two Session types: the session and every handler above stay
// one compiled type, and the plain path pays one predictable branch per read or write. A
// plain connection holds only its socket; a TLS connection's state lives behind one pointer.
//
// Thread safety: as the streams it wraps (one strand per connection).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace fngate::gateway {

class ClientStream {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;

  // TLS when `tls` is set; the stream keeps the context alive (a reload may replace it).
  ClientStream(boost::asio::ip::tcp::socket&& socket,
               std::shared_ptr<boost::asio::ssl::context> tls)
      : socket_(std::move(socket)) {
    if (tls != nullptr) tls_ = std::make_unique<Tls>(std::move(socket_), std::move(tls));
  }

  bool is_tls() const { return tls_ != nullptr; }

  executor_type get_executor() noexcept { return socket().get_executor(); }

  // The TCP socket, under TLS or not: for addresses, readiness, closing.
  boost::asio::ip::tcp::socket& socket() noexcept {
    return tls_ != nullptr ? tls_->stream.next_layer() : socket_;
  }

  // The TLS server handshake and shutdown (close_notify). TLS streams only.
  template <class Handler>
  void async_handshake(Handler&& handler) {
    tls_->stream.async_handshake(boost::asio::ssl::stream_base::server,
                                 std::forward<Handler>(handler));
  }
  template <class Handler>
  void async_shutdown(Handler&& handler) {
    tls_->stream.async_shutdown(std::forward<Handler>(handler));
  }

  // Where TLS records are decrypted for the session (Asio's TLS stream fills the caller's
  // buffer when a read completes, so it cannot be shared like a plain socket's). TLS only.
  boost::asio::mutable_buffer tls_read_buffer() noexcept {
    return boost::asio::buffer(tls_->read_buffer);
  }

  template <class MutableBufferSequence, class ReadHandler>
  void async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    if (tls_ != nullptr) {
      tls_->stream.async_read_some(buffers, std::forward<ReadHandler>(handler));
    } else {
      socket_.async_read_some(buffers, std::forward<ReadHandler>(handler));
    }
  }

  // Beast's ssl_stream gathers a buffer sequence into one TLS record where it can (Asio's
  // would write one record per buffer): a batch of frames stays one write either way.
  template <class ConstBufferSequence, class WriteHandler>
  void async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    if (tls_ != nullptr) {
      tls_->stream.async_write_some(buffers, std::forward<WriteHandler>(handler));
    } else {
      socket_.async_write_some(buffers, std::forward<WriteHandler>(handler));
    }
  }

 private:
  struct Tls {
    Tls(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<boost::asio::ssl::context> c)
        : context(std::move(c)), stream(std::move(socket), *context) {}
    std::shared_ptr<boost::asio::ssl::context> context;  // Declared first: outlives `stream`.
    boost::beast::ssl_stream<boost::asio::ip::tcp::socket> stream;
    std::array<uint8_t, 16 * 1024> read_buffer;
  };

  boost::asio::ip::tcp::socket socket_;  // Plain; moved into tls_ for wss://.
  std::unique_ptr<Tls> tls_;
};

}  // namespace fngate::gateway
