#include "gateway/lingering_close.h"

#include <algorithm>
#include <array>

#include <boost/asio/steady_timer.hpp>

namespace fngate::gateway {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr size_t kMaxDrainedBytes = 64 * 1024;
constexpr std::chrono::milliseconds kMaxLinger{2000};

// Owns the socket while it lingers; every handler runs on the socket's executor (its strand).
class Linger : public std::enable_shared_from_this<Linger> {
 public:
  Linger(tcp::socket socket, std::shared_ptr<void> keep)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), keep_(std::move(keep)) {}

  void Start(std::chrono::milliseconds timeout) {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    timer_.expires_after(std::min(timeout, kMaxLinger));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->Close();  // Closing cancels the read.
    });
    Read();
  }

 private:
  void Read() {
    socket_.async_read_some(net::buffer(buffer_), [self = shared_from_this()](
                                                      boost::system::error_code ec, size_t n) {
      self->drained_ += n;
      // EOF (the client closed), an error, or enough dropped: done.
      if (ec || self->drained_ >= kMaxDrainedBytes) return self->Close();
      self->Read();
    });
  }

  void Close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
  }

  tcp::socket socket_;
  net::steady_timer timer_;
  std::shared_ptr<void> keep_;
  std::array<char, 4096> buffer_;
  size_t drained_ = 0;
};

}  // namespace

void LingeringClose(tcp::socket socket, std::chrono::milliseconds timeout,
                    std::shared_ptr<void> keep) {
  if (!socket.is_open()) return;
  std::make_shared<Linger>(std::move(socket), std::move(keep))->Start(timeout);
}

}  // namespace fngate::gateway
