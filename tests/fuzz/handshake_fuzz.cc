// tests/fuzz/handshake_fuzz.cc
// The client side of a connection on arbitrary bytes, as Session reads it (gateway/session.cc),
// over Beast's in-memory test stream instead of a socket:
//   1. the upgrade request, by Beast's HTTP parser with the gateway's header limit (the
//      default limits.max_header_bytes);
//   2. what the gateway reads from it: target (url.h), function lookup (GatewayState, the real
//      routing table), the signed-URL check (signed_url.h; "private" requires one), forwarded
//      headers, offered subprotocols (handshake.h);
//   3. the WebSocket checks and answer: version, key, Sec-WebSocket-Accept, permessage-deflate
//      (ws_codec.h);
//   4. what follows the request, as client frames (ws::FrameReader, fed in growing pieces
//      as reads deliver them) with the gateway's message limit, text messages then parsed as
//      envelope frames (the fngate.v1 path).
// The function is never called: there is no worker here, and what a connect reply does is the
// worker's input, not the client's.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gateway/config.h"
#include "gateway/envelope.h"
#include "common/completion_queue_thread.h"
#include "gateway/gateway_state.h"
#include "gateway/handshake.h"
#include "gateway/signed_url.h"
#include "gateway/url.h"
#include "gateway/ws_codec.h"
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
    // Both live as long as the process.
    return new GatewayState(std::move(settings), nullptr, (new CompletionQueueThread())->cq());
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

  // 3. Session::CheckWebSocketRequest and Session::OnConnectReply, for a function that
  // accepts, picks no subprotocol and enables permessage-deflate.
  const std::string_view version = View(request[http::field::sec_websocket_version]);
  const std::string_view key = View(request[http::field::sec_websocket_key]);
  if (version != "13") return;                // 426
  if (!ws::IsValidClientKey(key)) return;     // 400
  const std::string accept = ws::AcceptKey(key);
  FUZZ_CHECK(accept.size() == 28 && accept.back() == '=') << accept;
  std::string extensions;
  for (auto [it, end] = request.equal_range(http::field::sec_websocket_extensions); it != end;
       ++it) {
    extensions += extensions.empty() ? "" : ", ";
    extensions += View(it->value());
  }
  const std::optional<std::string> deflate = ws::NegotiateDeflate(extensions);
  if (deflate) {
    FUZZ_CHECK(absl::StartsWith(*deflate, "permessage-deflate")) << *deflate;
    FUZZ_CHECK(deflate->find_first_of("\r\n") == std::string::npos) << *deflate;
  }

  // 4. Session::Consume: the bytes after the request as client frames with the gateway's
  // message limit, given in growing pieces as reads would, then the envelope codec on each
  // text message.
  while (!ec) {
    buffer.commit(socket.read_some(buffer.prepare(4096), ec));
  }
  const std::string rest(static_cast<const char*>(buffer.data().data()), buffer.size());
  ws::FrameReader reader(kMaxMessageBytes, deflate.has_value());
  std::string pending;
  size_t offset = 0;
  int messages = 0;
  for (size_t piece = 1; offset < rest.size() && messages < kMaxMessages; piece *= 2) {
    pending.append(rest, offset, piece);
    offset += std::min(piece, rest.size() - offset);
    size_t start = 0;
    while (start < pending.size() && messages < kMaxMessages) {
      size_t used = 0;
      const auto result = reader.Parse(reinterpret_cast<const uint8_t*>(pending.data()) + start,
                                       pending.size() - start, used);
      FUZZ_CHECK(used <= pending.size() - start);
      start += used;
      if (result == ws::FrameReader::Result::kNeedMore) break;
      if (result == ws::FrameReader::Result::kError) {
        const int code = reader.error_code();
        FUZZ_CHECK(code == 1002 || code == 1007 || code == 1009) << code;
        return;
      }
      if (result == ws::FrameReader::Result::kClose) return;
      if (result != ws::FrameReader::Result::kMessage) continue;
      ++messages;
      const bool binary = reader.binary();
      const std::string message = reader.TakeMessage();
      FUZZ_CHECK(message.size() <= kMaxMessageBytes);
      if (!binary) {
        FUZZ_CHECK(ws::IsValidUtf8(message));
        (void)envelope::ParseClientFrame(message, kMaxMessageBytes);
      }
    }
    pending.erase(0, start);
  }
}

}  // namespace
}  // namespace fngate::gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fngate::gateway::Check(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
