// tests/fuzz/handshake_fuzz.cc
// The client side of a connection on arbitrary bytes, as Session reads it (gateway/session.cc),
// over Beast's in-memory test stream instead of a socket:
//   1. the upgrade request, by Beast's HTTP parser with the gateway's header limit (the
//      default limits.max_header_bytes);
//   2. what the gateway reads from it: target (url.h), function lookup (GatewayState, the real
//      routing table), the signed-URL check (signed_url.h; "private" requires one), forwarded
//      headers, offered subprotocols (handshake.h);
//   3. the WebSocket accept with the gateway's response decorator and stream settings;
//   4. what follows the request, as client frames with the gateway's message limit, text
//      messages then parsed as envelope frames (the fngate.v1 path).
// The function is never called: there is no worker here, and what a connect reply does is the
// worker's input, not the client's.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gateway/config.h"
#include "gateway/envelope.h"
#include "gateway/gateway_state.h"
#include "gateway/handshake.h"
#include "gateway/signed_url.h"
#include "gateway/url.h"
#include "tests/fuzz/fuzz_check.h"

namespace fngate::gateway {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace websocket = beast::websocket;

constexpr size_t kMaxMessageBytes = 64 * 1024;
constexpr int kMaxMessages = 16;
const absl::Time kNow = absl::FromUnixSeconds(1700000000);  // The signed-URL check's clock.

// Built once: a gateway with four functions. Their workers are never called; the unix socket
// path does not exist, so the channels' connection attempts fail at once and stay local.
GatewayState& State() {
  static GatewayState* const state = [] {
    GatewaySettings settings;
    for (const char* name : {"echo", "chat", "a.b-c_d", "private"}) {
      FunctionSettings f;
      f.name = name;
      f.target = "unix:/nonexistent/fngate-fuzz.sock";
      f.transport = FunctionTransport::kUnary;  // No stream pool, no sweeper thread.
      f.require_signed_url = f.name == "private";
      settings.functions.push_back(std::move(f));
    }
    settings.limits.max_message_bytes = kMaxMessageBytes;
    settings.signing.keys.push_back({"k1", "fngate-fuzz-secret-k1-0123456789"});
    return new GatewayState(std::move(settings), nullptr);  // Lives as long as the process.
  }();
  return *state;
}

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

void Check(std::string_view input) {
  static net::io_context ioc;  // Only an executor for the test streams: never run.
  beast::test::stream socket(ioc, input);
  beast::test::stream peer(ioc);  // The client: receives what the gateway writes.
  socket.connect(peer);
  socket.close_remote();  // After the input, the client sends nothing more: reads get eof.
  // A quarter of the inputs arrive in small pieces, as from a slow network: the parsers must
  // not care where reads split.
  if (input.size() % 4 == 0) socket.read_size(1 + input.size() % 61);

  // 1. Session::ReadRequest / OnRequest.
  beast::flat_buffer buffer;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(State().settings().limits.max_header_bytes);
  beast::error_code ec;
  http::read(socket, buffer, parser, ec);
  if (ec) return;  // The session drops the connection.
  http::request<http::empty_body> request = parser.release();
  if (!websocket::is_upgrade(request)) return;  // 426

  // 2. What the connect event is made of.
  const std::string_view raw_target = View(request.target());
  const RequestTarget target = ParseRequestTarget(raw_target);
  FUZZ_CHECK(raw_target.substr(0, target.path.size()) == target.path) << raw_target;
  FUZZ_CHECK(target.path.find('?') == std::string::npos) << raw_target;
  const int function = State().FindFunction(target.function);
  FUZZ_CHECK(function >= -1 && function < static_cast<int>(State().function_count()));
  for (const std::string& name : State().settings().forward_headers) {
    auto it = request.find(beast::string_view(name.data(), name.size()));
    if (it != request.end()) (void)std::string(it->value());
  }
  if (auto it = request.find(http::field::sec_websocket_protocol); it != request.end()) {
    for (const std::string& p : SplitSubprotocols(View(it->value()))) {
      FUZZ_CHECK(!p.empty() && p.find(',') == std::string::npos && p.front() != ' ' &&
                 p.back() != ' ' && p.front() != '\t' && p.back() != '\t')
          << "'" << p << "'";
    }
  }
  if (function < 0) return;  // 404
  // Session::OnRequest's signed-URL check (after the connection limits and the origin check,
  // which need a peer address and configuration this target does not vary).
  RequestTarget checked = target;
  const UrlCheck signed_url = CheckSignedUrl(
      State().url_signer(), State().function(function).settings().require_signed_url, checked,
      kNow);
  if (!signed_url.ok()) {
    FUZZ_CHECK(!signed_url.message.empty()) << UrlCheckErrorName(signed_url.error);
    FUZZ_CHECK(absl::StartsWith(signed_url.HttpBody(), "fngate: ")) << signed_url.HttpBody();
    return;  // 401
  }
  for (const auto& [name, value] : checked.query) {
    FUZZ_CHECK(!absl::StartsWith(name, kReservedParamPrefix)) << raw_target;
  }

  // 3. Session::OnConnectReply, for a function that accepts and picks no subprotocol. The
  // bytes after the request go to the WebSocket stream, in order (the session drops what it
  // read past the request, but a client must wait for the 101 before sending frames anyway).
  while (!ec) {
    buffer.commit(socket.read_some(buffer.prepare(4096), ec));
  }
  ec = {};
  const std::string rest(static_cast<const char*>(buffer.data().data()), buffer.size());
  websocket::stream<beast::test::stream> ws(std::move(socket));
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& response) { response.set(http::field::server, "fngate"); }));
  ws.read_message_max(kMaxMessageBytes);
  ws.auto_fragment(false);
  ws.accept(request, ec);
  const std::string response = peer.str();
  if (ec) {
    FUZZ_CHECK(response.substr(0, 12) != "HTTP/1.1 101") << response;
    return;
  }
  FUZZ_CHECK(response.substr(0, 12) == "HTTP/1.1 101") << response;

  // 4. Session::ReadNext / OnRead, then the envelope codec on each text message.
  ws.next_layer().append(rest);
  for (int i = 0; i < kMaxMessages; ++i) {
    beast::flat_buffer message;
    ws.read(message, ec);
    if (ec) break;
    FUZZ_CHECK(message.size() <= kMaxMessageBytes);
    if (ws.got_text()) {
      const std::string_view text(static_cast<const char*>(message.data().data()),
                                  message.size());
      const envelope::ClientFrame frame = envelope::ParseClientFrame(text, kMaxMessageBytes);
      (void)frame;
    }
  }
}

}  // namespace
}  // namespace fngate::gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fngate::gateway::Check(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
