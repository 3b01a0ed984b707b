// Unit tests of tests/support/ws_test_client.h and http_get.h against a tiny in-process Beast
// server, so the client is known good before it is pointed at the gateway.
#include "tests/support/ws_test_client.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/support/http_get.h"

namespace fngate::test_support {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

constexpr absl::Duration kTimeout = absl::Seconds(5);

// Serves one connection at a time on its own thread. The path picks the behaviour:
//   /echo      accept (choosing the first offered subprotocol), echo every message as it came
//   /close     accept, read one message, close with 4000 "bye"
//   /vanish    accept, read one message, reset the TCP connection
//   /reject    answer 403 "denied"
//   /healthz   plain HTTP 200 "ok"
// Records one outcome per connection: "closed:<code>" (client close frame), "error" (the client
// broke the connection), or the path's own word.
class TinyServer {
 public:
  TinyServer() : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Loop(); });
  }
  ~TinyServer() {
    stop_ = true;
    // Wake the blocking accept().
    net::io_context ioc;
    tcp::socket poke(ioc);
    error_code ignored;
    poke.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)),
                 ignored);
    thread_.join();
  }

  int port() const { return port_; }

  // The outcome of the n-th connection (1-based), once it is known.
  std::string WaitForOutcome(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto have = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return outcomes_.size() >= n; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&have), timeout)) return "<none>";
    return outcomes_[n - 1];
  }

 private:
  void Record(std::string outcome) {
    absl::MutexLock lock(&mu_);
    outcomes_.push_back(std::move(outcome));
  }

  void Loop() {
    while (true) {
      tcp::socket socket(ioc_);
      error_code ec;
      acceptor_.accept(socket, ec);
      if (stop_ || ec) return;
      Handle(std::move(socket));
    }
  }

  void Handle(tcp::socket socket) {
    error_code ec;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::read(socket, buffer, request, ec);
    if (ec) return Record("error");
    const std::string target(request.target());
    if (target == "/reject" || target == "/healthz") {
      bool ok = target == "/healthz";
      http::response<http::string_body> response(ok ? http::status::ok : http::status::forbidden, 11);
      response.set(http::field::content_type, "text/plain");
      response.body() = ok ? "ok" : "denied";
      response.prepare_payload();
      http::write(socket, response, ec);
      socket.shutdown(tcp::socket::shutdown_send, ec);
      return Record(ok ? "http" : "rejected");
    }
    websocket::stream<tcp::socket> ws(std::move(socket));
    std::string offered(request[http::field::sec_websocket_protocol]);
    if (!offered.empty()) {
      std::string first = offered.substr(0, offered.find(','));
      ws.set_option(websocket::stream_base::decorator(
          [first](websocket::response_type& res) { res.set(http::field::sec_websocket_protocol, first); }));
    }
    ws.accept(request, ec);
    if (ec) return Record("error");
    buffer.clear();
    while (true) {
      ws.read(buffer, ec);
      if (ec == websocket::error::closed) return Record(absl::StrCat("closed:", ws.reason().code));
      if (ec) return Record("error");
      if (target == "/close") {
        ws.close(websocket::close_reason(static_cast<websocket::close_code>(4000), "bye"), ec);
        // Beast's close() waits for the client's answering close frame.
        return Record(ec ? "error" : "server-closed");
      }
      if (target == "/vanish") {
        ws.next_layer().set_option(net::socket_base::linger(true, 0), ec);
        ws.next_layer().close(ec);
        return Record("vanished");
      }
      ws.binary(ws.got_binary());
      ws.write(buffer.data(), ec);
      if (ec) return Record("error");
      buffer.consume(buffer.size());
    }
  }

  net::io_context ioc_;
  tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<std::string> outcomes_ ABSL_GUARDED_BY(mu_);
};

TEST(WsTestClientTest, EchoKeepsTextAndBinary) {
  TinyServer server;
  WsTestClient client;
  ASSERT_TRUE(client.Connect("127.0.0.1", server.port(), "/echo", kTimeout).ok());
  EXPECT_TRUE(client.IsOpen());
  EXPECT_EQ(client.HandshakeStatus(), 101);

  ASSERT_TRUE(client.SendText("hello", kTimeout).ok());
  absl::StatusOr<WsMessage> text = client.Read(kTimeout);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_FALSE(text->is_binary);
  EXPECT_EQ(text->data, "hello");

  const std::string bytes("\x00\xff\x01binary", 9);
  ASSERT_TRUE(client.SendBinary(bytes, kTimeout).ok());
  absl::StatusOr<WsMessage> binary = client.Read(kTimeout);
  ASSERT_TRUE(binary.ok()) << binary.status();
  EXPECT_TRUE(binary->is_binary);
  EXPECT_EQ(binary->data, bytes);

  ASSERT_TRUE(client.Close(1000, "done", kTimeout).ok());
  EXPECT_FALSE(client.IsOpen());
  EXPECT_EQ(server.WaitForOutcome(1, kTimeout), "closed:1000");
}

TEST(WsTestClientTest, TwoMebibyteMessage) {
  TinyServer server;
  WsTestClient client;
  ASSERT_TRUE(client.Connect("127.0.0.1", server.port(), "/echo", kTimeout).ok());
  std::string big(2 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(client.SendBinary(big, kTimeout).ok());
  absl::StatusOr<WsMessage> reply = client.Read(kTimeout);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->data == big);
}

TEST(WsTestClientTest, OffersSubprotocolsAndReadsTheAnswer) {
  TinyServer server;
  WsTestClient client;
  WsConnectOptions options;
  options.subprotocols = {"chat.v1", "other"};
  options.headers = {{"Origin", "https://example.test"}};
  ASSERT_TRUE(client.Connect("127.0.0.1", server.port(), "/echo", kTimeout, options).ok());
  EXPECT_EQ(client.HandshakeHeader("Sec-WebSocket-Protocol"), "chat.v1");
}

TEST(WsTestClientTest, RefusedHandshakeExposesStatusAndBody) {
  TinyServer server;
  WsTestClient client;
  absl::Status status = client.Connect("127.0.0.1", server.port(), "/reject", kTimeout);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(client.HandshakeStatus(), 403);
  EXPECT_EQ(client.HandshakeBody(), "denied");
  EXPECT_FALSE(client.IsOpen());
}

TEST(WsTestClientTest, PeerCloseGivesCodeAndReason) {
  TinyServer server;
  WsTestClient client;
  ASSERT_TRUE(client.Connect("127.0.0.1", server.port(), "/close", kTimeout).ok());
  ASSERT_TRUE(client.SendText("x", kTimeout).ok());
  absl::StatusOr<int> code = client.WaitForClose(kTimeout);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 4000);
  EXPECT_EQ(client.CloseReason(), "bye");
  EXPECT_EQ(client.Read(kTimeout).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(server.WaitForOutcome(1, kTimeout), "server-closed");
}

TEST(WsTestClientTest, AbortSendsNoCloseFrame) {
  TinyServer server;
  WsTestClient client;
  ASSERT_TRUE(client.Connect("127.0.0.1", server.port(), "/echo", kTimeout).ok());
  ASSERT_TRUE(client.SendText("ping", kTimeout).ok());
  ASSERT_TRUE(client.Read(kTimeout).ok());  // The server now waits in read().
  client.Abort();
  EXPECT_FALSE(client.IsOpen());
  EXPECT_EQ(server.WaitForOutcome(1, kTimeout), "error");
}

TEST(WsTestClientTest, VanishedPeerIs1006) {
  TinyServer server;
  WsTestClient client;
  ASSERT_TRUE(client.Connect("127.0.0.1", server.port(), "/vanish", kTimeout).ok());
  ASSERT_TRUE(client.SendText("x", kTimeout).ok());
  absl::StatusOr<WsMessage> message = client.Read(kTimeout);
  EXPECT_EQ(message.status().code(), absl::StatusCode::kUnavailable) << message.status();
  EXPECT_EQ(client.CloseCode(), 1006);
}

TEST(WsTestClientTest, ReadTimesOut) {
  TinyServer server;
  WsTestClient client;
  ASSERT_TRUE(client.Connect("127.0.0.1", server.port(), "/echo", kTimeout).ok());
  absl::StatusOr<WsMessage> message = client.Read(absl::Milliseconds(50));
  EXPECT_EQ(message.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(client.IsOpen());
}

TEST(WsTestClientTest, ConnectRefusedIsUnavailable) {
  int port = 0;
  {
    TinyServer server;
    port = server.port();
  }
  WsTestClient client;
  absl::Status status = client.Connect("127.0.0.1", port, "/echo", kTimeout);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(client.HandshakeStatus(), 0);
}

TEST(HttpGetTest, ReadsStatusAndBody) {
  TinyServer server;
  absl::StatusOr<HttpResponse> response = HttpGet("127.0.0.1", server.port(), "/healthz", kTimeout);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "ok");
  EXPECT_EQ(response->content_type, "text/plain");
}

}  // namespace
}  // namespace fngate::test_support
