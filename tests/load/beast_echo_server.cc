// beast_echo_server: the ceiling of our own stack, for bench/run.sh. A minimal Boost.Beast
// asynchronous WebSocket echo server, shaped like Beast's websocket_server_async example: read
// one message, write it back from the same buffer, read the next. Nothing else sits between the
// socket and the echo, so fngate (the same Beast and Asio, plus a function hop) can be compared
// with it in the same run.
//
//   beast_echo_server [--listen=127.0.0.1:0] [--threads=1]
//
// Once listening it prints exactly one stdout line `READY ws=<port>`. SIGTERM/SIGINT: exit 0.
// Every message is echoed back with its kind (text/binary). A text message starting with
// "BROADCAST " is not echoed: the rest of it is sent, as one text message, to every other open
// connection (one shared buffer, one write queue per connection): the broadcast scenario of
// tests/load/fngate_load.
//
// Threads: one io_context run by --threads threads; each connection lives on its own strand;
// the registry of open connections is the only shared state (a mutex, no call-outs while held).
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

constexpr std::string_view kBroadcastPrefix = "BROADCAST ";
// Broadcasts queued to one connection beyond this are dropped: a client that does not read
// costs bounded memory.
constexpr std::size_t kMaxQueuedBroadcasts = 4096;

class Session;

// Open connections, for broadcasts. Holds weak pointers: a session leaves in its destructor.
// Thread-safe.
class Registry {
 public:
  void Join(Session* session, std::weak_ptr<Session> weak) {
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_.emplace(session, std::move(weak));
  }
  void Leave(Session* session) {
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_.erase(session);
  }
  // Sends `payload` to every open session but `except`. Snapshots under the lock, delivers
  // outside it.
  void Broadcast(std::shared_ptr<const std::string> payload, const Session* except);

 private:
  std::mutex mutex_;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;
};

// One client connection; every member is touched only on its strand. Kept alive by the
// handlers it has pending (Beast's websocket_server_async pattern).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, Registry& registry)
      : ws_(std::move(socket)), registry_(registry) {}
  ~Session() { registry_.Leave(this); }

  void Start() {
    net::dispatch(ws_.get_executor(),
                  beast::bind_front_handler(&Session::DoAccept, shared_from_this()));
  }

  // Any thread: queues one text message behind what this connection is writing.
  void Deliver(std::shared_ptr<const std::string> payload) {
    net::post(ws_.get_executor(), [self = shared_from_this(), payload = std::move(payload)] {
      if (self->closed_ || self->queue_.size() >= kMaxQueuedBroadcasts) return;
      self->queue_.push_back(payload);
      self->MaybeWrite();
    });
  }

 private:
  void DoAccept() {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(1 << 20);
    ws_.async_accept(beast::bind_front_handler(&Session::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec) {
    if (ec) return;  // A failed handshake: nothing to clean up.
    registry_.Join(this, weak_from_this());
    ReadNext();
  }

  void ReadNext() {
    ws_.async_read(buffer_, beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec) {  // `closed` is a normal goodbye; anything else ends the connection as well.
      closed_ = true;
      queue_.clear();
      return;
    }
    if (ws_.got_text() && buffer_.size() >= kBroadcastPrefix.size()) {
      const std::string_view text(static_cast<const char*>(buffer_.data().data()), buffer_.size());
      if (text.substr(0, kBroadcastPrefix.size()) == kBroadcastPrefix) {
        registry_.Broadcast(
            std::make_shared<const std::string>(text.substr(kBroadcastPrefix.size())), this);
        buffer_.consume(buffer_.size());
        return ReadNext();
      }
    }
    // The echo is written straight from the read buffer; the next read starts once it is out.
    echo_pending_ = true;
    MaybeWrite();
  }

  // Starts the next write if none is in flight: the pending echo first, then broadcasts.
  void MaybeWrite() {
    if (writing_ || closed_) return;
    if (echo_pending_) {
      writing_ = true;
      writing_echo_ = true;
      ws_.text(ws_.got_text());
      ws_.async_write(buffer_.data(),
                      beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
    } else if (!queue_.empty()) {
      writing_ = true;
      writing_echo_ = false;
      ws_.text(true);
      ws_.async_write(net::buffer(*queue_.front()),
                      beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
    }
  }

  void OnWrite(beast::error_code ec, std::size_t /*bytes*/) {
    writing_ = false;
    if (ec) {
      closed_ = true;
      queue_.clear();
      return;
    }
    if (writing_echo_) {
      echo_pending_ = false;
      buffer_.consume(buffer_.size());
      ReadNext();
    } else {
      queue_.pop_front();
    }
    MaybeWrite();
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;  // Broadcasts waiting to be written.
  bool echo_pending_ = false;  // buffer_ holds a message to echo.
  bool writing_ = false;
  bool writing_echo_ = false;
  bool closed_ = false;
  Registry& registry_;
};

void Registry::Broadcast(std::shared_ptr<const std::string> payload, const Session* except) {
  std::vector<std::weak_ptr<Session>> targets;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    targets.reserve(sessions_.size());
    for (const auto& [session, weak] : sessions_) {
      if (session != except) targets.push_back(weak);
    }
  }
  for (const std::weak_ptr<Session>& weak : targets) {
    if (std::shared_ptr<Session> session = weak.lock()) session->Deliver(payload);
  }
}

// Accepts connections, each onto a new strand.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::acceptor&& acceptor, Registry& registry)
      : ioc_(ioc), acceptor_(std::move(acceptor)), registry_(registry) {}

  void Run() { DoAccept(); }

 private:
  void DoAccept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (!ec) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), registry_)->Start();
    } else if (ec == net::error::operation_aborted) {
      return;
    }
    // Other accept errors (EMFILE under an idle-connection test, say) are transient.
    DoAccept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  Registry& registry_;
};

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  int threads = 1;
};

[[noreturn]] void Usage(const std::string& problem) {
  std::cerr << "beast_echo_server: " << problem
            << "\nusage: beast_echo_server [--listen=HOST:PORT] [--threads=N]\n";
  std::exit(2);
}

Options ParseFlags(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--listen=", 0) == 0) {
      const std::string value = arg.substr(9);
      const std::size_t colon = value.rfind(':');
      if (colon == std::string::npos) Usage("--listen wants HOST:PORT");
      options.host = value.substr(0, colon);
      options.port = static_cast<unsigned short>(std::atoi(value.c_str() + colon + 1));
    } else if (arg.rfind("--threads=", 0) == 0) {
      options.threads = std::atoi(arg.c_str() + 10);
      if (options.threads < 1 || options.threads > 64) Usage("--threads wants 1..64");
    } else {
      Usage("unknown flag " + arg);
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseFlags(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);

  net::io_context ioc(options.threads);
  beast::error_code ec;
  const net::ip::address address = net::ip::make_address(options.host, ec);
  if (ec) Usage("bad listen address " + options.host);
  tcp::acceptor acceptor(ioc);
  const tcp::endpoint endpoint(address, options.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "beast_echo_server: cannot listen on " << options.host << ":" << options.port
              << ": " << ec.message() << "\n";
    return 1;
  }
  const unsigned short port = acceptor.local_endpoint().port();

  Registry registry;
  std::make_shared<Listener>(ioc, std::move(acceptor), registry)->Run();

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](beast::error_code, int) { ioc.stop(); });

  std::printf("READY ws=%u\n", static_cast<unsigned>(port));
  std::fflush(stdout);

  std::vector<std::thread> threads;
  for (int i = 1; i < options.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (std::thread& t : threads) t.join();
  return 0;
}
