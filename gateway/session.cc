#include "gateway/session.h"

#include <algorithm>
#include <array>
#include <span>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status_util.h"
#include "gateway/client_address.h"
#include "gateway/connection_id.h"
#include "gateway/envelope.h"
#include "gateway/fanout.h"
#include "gateway/identity.h"
#include "gateway/handshake.h"
#include "gateway/signed_url.h"
#include "gateway/lingering_close.h"
#include "gateway/origin.h"
#include "gateway/url.h"

namespace fngate::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using boost::system::error_code;


namespace {

void SetTimestamp(std::chrono::system_clock::time_point t, google::protobuf::Timestamp& out) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
  out.set_seconds(ns.count() / 1000000000);
  out.set_nanos(static_cast<int32_t>(ns.count() % 1000000000));
}

int64_t UnixMicros(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// Group names a function's reply gave, minus the malformed ones (logged: the function's bug
// must not cost the client its connection).
Strings ValidGroups(const std::string& id, const Strings& groups) {
  Strings valid;
  for (const std::string& group : groups) {
    if (IsValidGroupName(group)) {
      valid.Add(std::string(group));
    } else {
      FNGATE_LOG(Warning) << "[conn=" << id << "] function named a malformed group '" << group
                          << "'; ignored";
    }
  }
  return valid;
}

std::string EndpointText(const net::ip::tcp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  return endpoint.address().is_v6() ? absl::StrCat("[", address, "]:", endpoint.port())
                                    : absl::StrCat(address, ":", endpoint.port());
}

// Cuts a close reason to the 123 bytes a close frame holds, on a UTF-8 boundary.
std::string TrimReason(std::string_view reason) { return std::string(ws::FitCloseReason(reason)); }

// What a queued message counts against max_outbound_bytes: its payload plus the queue entry,
// so that empty messages cannot pile up for free.
uint64_t QueuedCost(uint64_t payload_bytes) { return payload_bytes + 64; }

// JSON a function puts in a reply is checked once, here; gRPC's message limit bounds it first.
constexpr size_t kMaxReplyJsonBytes = 64 << 20;

int CloseCodeForFailure(const grpc::Status& status) {
  // No worker took it, or the worker is overloaded: "try again later". Otherwise the function
  // (or its deadline) failed: "internal error".
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                 status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED
             ? kCloseTryAgainLater
             : kCloseInternalError;
}


// A write takes at most this many frames or bytes from the queue (one system call on a plain
// socket): enough to empty the queue of a busy connection in one go, small enough that one
// write never holds much.
constexpr size_t kMaxBatchFrames = 32;
constexpr uint64_t kMaxBatchBytes = 256 * 1024;

// Plain sockets read only once the kernel has bytes, into this buffer, shared by every
// connection the thread serves: an idle connection holds no read buffer at all.
constexpr size_t kReadScratchBytes = 64 * 1024;
uint8_t* ReadScratch() {
  thread_local std::unique_ptr<uint8_t[]> scratch(new uint8_t[kReadScratchBytes]);
  return scratch.get();
}

LimitKind LimitKindOfClose(int code) {
  switch (code) {
    case kCloseTooBig:
      return LimitKind::kMessageSize;
    case 1007:
      return LimitKind::kUtf8;
    default:
      return LimitKind::kProtocol;
  }
}

}  // namespace

// The upgrade request and what the connect event's reply decides, until the 101 is written.
struct Session::Handshake {
  explicit Handshake(const ClientStream::executor_type& executor) : timer(executor) {}
  beast::flat_buffer buffer;
  std::optional<http::request_parser<http::empty_body>> parser;
  http::request<http::empty_body> request;
  v1::ConnectionContext context;  // Frozen into context_ once the function accepts.
  std::string user_agent;
  std::string response;  // The 101, while it is written.
  net::steady_timer timer;
  bool timed_out = false;
};

// Frames written in one call: their headers, the payloads they point to (held, so that the
// queue may be dropped while the socket still writes from them) and what they count for.
struct Session::WriteBatch {
  // Sized for the batch before the first frame is added (Reserve), so that no buffer ever
  // points into storage that moved; a one-frame batch stays in the inline space.
  absl::InlinedVector<std::array<uint8_t, ws::kMaxFrameHeaderBytes>, 2> headers;
  absl::InlinedVector<net::const_buffer, 4> buffers;
  absl::InlinedVector<OutboundMessagePtr, 2> messages;
  std::vector<std::string> owned;  // Compressed payloads and control payloads.
  uint64_t payload_bytes = 0;  // Of the messages, as sent (before compression).
  uint64_t cost = 0;           // Against max_outbound_bytes (QueuedCost).
  bool close = false;          // Ends with our close frame.

  void Reserve(size_t frames, bool own_payloads) {
    headers.reserve(frames);
    buffers.reserve(2 * frames);
    messages.reserve(frames);
    if (own_payloads) owned.reserve(frames);
  }
  void Add(ws::Opcode opcode, std::string_view payload, bool compressed) {
    auto& header = headers.emplace_back();
    const size_t n = ws::WriteFrameHeader(opcode, payload.size(), compressed, header.data());
    buffers.emplace_back(header.data(), n);
    if (!payload.empty()) buffers.emplace_back(payload.data(), payload.size());
  }
  // A payload the batch keeps itself (space reserved: moving a short string moves its bytes).
  void AddOwned(ws::Opcode opcode, std::string payload, bool compressed) {
    owned.push_back(std::move(payload));
    Add(opcode, owned.back(), compressed);
  }
};

Session::Session(net::ip::tcp::socket&& socket, GatewayState& state)
    : stream_(std::move(socket), state.tls() != nullptr ? state.tls()->Current() : nullptr),
      state_(state),
      id_(NewConnectionId()),
      hs_(std::make_unique<Handshake>(stream_.get_executor())) {}

// The listener took a socket slot for this session (GatewayState::TryAddSocket).
Session::~Session() { state_.RemoveSocket(); }

FunctionMetrics& Session::metrics() { return state_.metrics().function(function_); }

const LimitSettings& Session::limits() const {
  return function_ < 0 ? state_.settings().limits
                       : state_.function(function_).settings().limits;
}

void Session::CountLimit(LimitKind kind) { state_.metrics().CountLimitHit(function_, kind); }

std::string Session::NextRequestId() { return absl::StrCat(id_, "-", ++request_counter_); }

template <typename Event>
Event Session::NewEvent() {
  Event event;
  *event.mutable_connection() = context_ != nullptr ? *context_ : hs_->context;
  event.set_request_id(NextRequestId());
  return event;
}

void Session::Start() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    // Counted from the first byte: one address cannot hold more sockets than its share, even
    // sockets that never finish a request.
    error_code ec;
    const auto peer = self->stream_.socket().remote_endpoint(ec);
    if (ec) return;  // Gone already.
    if (self->slots_.Take(self->state_.address_counter(), AddressKeyOf(peer.address())) !=
        Admission::kAdmitted) {
      self->CountLimit(LimitKind::kPerIp);
      // wss://: no TLS session yet to answer in; closing is the answer.
      if (self->stream_.is_tls()) return;
      return self->RespondHttp(429, "fngate: too many connections from this address\n");
    }
    if (!self->stream_.is_tls()) return self->ReadRequest();
    // wss://: the TLS handshake counts against the handshake timeout too.
    self->ArmHandshakeTimer();
    self->stream_.async_handshake([self](error_code ec) {
      if (ec) {
        FNGATE_LOG(Debug) << "[conn=" << self->id_ << "] no TLS handshake: " << ec.message();
        if (self->hs_->timed_out) self->CountLimit(LimitKind::kHandshakeTimeout);
        return self->AbandonHandshake();
      }
      self->ReadRequest();
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Handshake

// Bounds the part of the handshake the client controls: the TLS handshake, the request, and
// writing the answer. The wait for the connect event is bounded by its own deadline.
void Session::ArmHandshakeTimer() {
  hs_->timer.expires_after(state_.settings().limits.handshake_timeout);
  hs_->timer.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->hs_ == nullptr) return;
    self->hs_->timed_out = true;
    error_code ignored;
    self->stream_.socket().close(ignored);  // The pending operation fails and ends it.
  });
}

// Nothing to answer (the client is gone, or sent what is not HTTP): the socket closes now, and
// the session with it, not when the handshake timer would have fired.
void Session::AbandonHandshake() {
  hs_->timer.cancel();
  error_code ignored;
  stream_.socket().close(ignored);
}

void Session::ReadRequest() {
  hs_->parser.emplace();
  hs_->parser->header_limit(state_.settings().limits.max_header_bytes);
  if (!stream_.is_tls()) ArmHandshakeTimer();  // wss:// armed it before the TLS handshake.
  http::async_read(stream_, hs_->buffer, *hs_->parser,
                   beast::bind_front_handler(&Session::OnRequest, shared_from_this()));
}

void Session::OnRequest(error_code ec, size_t /*bytes*/) {
  if (ec) {
    // A half-sent request, garbage, or a timeout: nothing was accepted, nobody to tell.
    FNGATE_LOG(Debug) << "[conn=" << id_ << "] no upgrade request: " << ec.message();
    if (hs_->timed_out) CountLimit(LimitKind::kHandshakeTimeout);
    if (ec == http::error::header_limit) {
      CountLimit(LimitKind::kHeaderSize);
      return RespondHttp(431, "fngate: request header too large\n");
    }
    return AbandonHandshake();
  }
  hs_->request = hs_->parser->release();
  hs_->parser.reset();
  // From here the connect deadline bounds the wait.
  hs_->timer.cancel();
  if (!CheckWebSocketRequest()) return;
  const auto& request = hs_->request;
  v1::ConnectionContext& context = hs_->context;
  RequestTarget target =
      ParseRequestTarget(std::string_view(request.target().data(), request.target().size()));
  function_ = state_.FindFunction(target.function);
  if (function_ < 0) return RespondHttp(404, "fngate: no such function\n");
  if (ConnectionCounter* counter = state_.function_counter(function_)) {
    error_code ignored;
    const auto peer = stream_.socket().remote_endpoint(ignored);
    const Admission admission = slots_.Take(*counter, AddressKeyOf(peer.address()));
    if (admission == Admission::kTooManyFromAddress) {
      CountLimit(LimitKind::kPerIp);
      return RespondHttp(429, "fngate: too many connections from this address\n");
    }
    if (admission == Admission::kTooMany) {
      CountLimit(LimitKind::kMaxConnections);
      return RespondHttp(503, "fngate: at capacity now\n");
    }
  }
  if (!OriginAllowed(state_.function(function_).settings().allowed_origins,
                     request[http::field::origin])) {
    return RespondHttp(403, "fngate: origin not allowed\n");
  }
  // Signed URLs (gateway/signed_url.h), before the function hears of this connection: 401, or
  // the signed user bound and the fngate_* parameters taken out of the query it will see.
  if (UrlCheck signed_url = CheckSignedUrl(
          state_.url_signer(), state_.function(function_).settings().require_signed_url, target,
          absl::Now());
      !signed_url.ok()) {
    FNGATE_LOG(Debug) << "[conn=" << id_ << "] refused (" << UrlCheckErrorName(signed_url.error)
                      << "): " << signed_url.message;
    return RespondHttp(401, signed_url.HttpBody());
  } else {
    context.set_user_id(std::move(signed_url.user_id));
  }
  // Counted before the draining check: a drain starting in between then waits for this one.
  state_.AddLive();
  if (state_.draining()) {
    state_.RemoveLive();
    return RespondHttp(503, "fngate: shutting down\n");
  }
  live_ = true;  // Owes the function a disconnect event once accepted.

  error_code ignored;
  const auto now = std::chrono::system_clock::now();
  context.set_connection_id(id_);
  context.set_function(target.function);
  if (!target.path.empty()) context.set_path(target.path);
  for (const auto& [key, value] : target.query) (*context.mutable_query())[key] = value;
  for (const std::string& name : state_.settings().forward_headers) {
    auto it = request.find(beast::string_view(name.data(), name.size()));
    if (it != request.end()) {
      (*context.mutable_headers())[name] = std::string(it->value());
    }
  }
  if (auto it = request.find(http::field::user_agent); it != request.end()) {
    hs_->user_agent = std::string(it->value());
  }
  context.set_client_address(ClientAddressOf(stream_.socket().remote_endpoint(ignored)));
  SetTimestamp(now, *context.mutable_connected_at());
  context.set_gateway(state_.control_advertise());
  last_activity_us_.store(UnixMicros(now), std::memory_order_relaxed);

  v1::ConnectEvent event = NewEvent<v1::ConnectEvent>();
  if (auto it = request.find(http::field::sec_websocket_protocol); it != request.end()) {
    for (std::string& p : SplitSubprotocols({it->value().data(), it->value().size()})) {
      event.add_subprotocols(std::move(p));
    }
  }
  std::string request_id = event.request_id();
  state_.function(function_).OnConnect(
      std::move(event), [self = shared_from_this(), request_id = std::move(request_id)](
                            const grpc::Status& status, v1::ConnectResponse& reply) {
        net::post(self->stream_.get_executor(),
                  [self, request_id, status, reply = std::move(reply)]() mutable {
                    self->OnConnectReply(request_id, status, std::move(reply));
                  });
      });
}

bool Session::CheckWebSocketRequest() {
  const auto& request = hs_->request;
  // GET, HTTP/1.1 or later, "Connection: upgrade" and "Upgrade: websocket".
  if (!beast::websocket::is_upgrade(request)) {
    RespondHttp(426, "fngate: this endpoint speaks WebSocket only\n");
    return false;
  }
  if (request[http::field::sec_websocket_version] != "13") {
    RespondHttp(426, "fngate: WebSocket version 13 only\n", /*version_header=*/true);
    return false;
  }
  const beast::string_view key = request[http::field::sec_websocket_key];
  if (!ws::IsValidClientKey({key.data(), key.size()})) {
    RespondHttp(400, "fngate: missing or malformed Sec-WebSocket-Key\n");
    return false;
  }
  return true;
}

// The peer, or behind trusted proxies the client they name in X-Forwarded-For.
std::string Session::ClientAddressOf(const net::ip::tcp::endpoint& peer) const {
  const std::vector<IpNetwork>& trusted = state_.settings().trusted_proxies;
  if (!trusted.empty()) {
    std::string forwarded_for;  // Every X-Forwarded-For header, in order, as one list.
    for (auto [it, end] = hs_->request.equal_range("x-forwarded-for"); it != end; ++it) {
      absl::StrAppend(&forwarded_for, forwarded_for.empty() ? "" : ",",
                      absl::string_view(it->value().data(), it->value().size()));
    }
    std::optional<std::string> client =
        ForwardedClient(peer.address().to_string(), forwarded_for, trusted);
    if (client) return *std::move(client);
  }
  return EndpointText(peer);
}

void Session::OnConnectReply(const std::string& request_id, const grpc::Status& status,
                             v1::ConnectResponse reply) {
  auto refuse = [this](int http_status, std::string body) {
    live_ = false;
    state_.RemoveLive();
    RespondHttp(http_status, std::move(body));
  };
  if (!status.ok()) {
    FNGATE_LOG(Warning) << "[conn=" << id_ << "] connect event failed: "
                        << status.error_code() << " " << status.error_message();
    FireError(v1::EVENT_KIND_CONNECT, request_id, status, 0);
    switch (status.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
        return refuse(503, "fngate: function unavailable\n");
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return refuse(504, "fngate: function timed out\n");
      default:
        return refuse(500, "fngate: function error\n");
    }
  }
  if (reply.has_reject()) {
    int http_status = reply.reject().http_status();
    if (http_status < 400 || http_status > 599) http_status = 403;
    return refuse(http_status, reply.reject().reason());
  }
  v1::ConnectionContext& context = hs_->context;
  const auto& request = hs_->request;
  if (!reply.user_id().empty()) context.set_user_id(reply.user_id());
  if (!reply.app_id().empty()) context.set_app_id(reply.app_id());
  if (!reply.channel().empty()) context.set_channel(reply.channel());
  if (!reply.device_id().empty()) context.set_device_id(reply.device_id());
  for (const auto& [key, value] : reply.metadata()) (*context.mutable_metadata())[key] = value;
  JoinGroups(ValidGroups(id_, reply.groups()), context);
  std::string subprotocol;
  const std::vector<std::string> offered =
      SplitSubprotocols({request[http::field::sec_websocket_protocol].data(),
                         request[http::field::sec_websocket_protocol].size()});
  auto was_offered = [&offered](std::string_view name) {
    return std::find(offered.begin(), offered.end(), name) != offered.end();
  };
  if (reply.subprotocol().empty()) {
    // The function did not pick one: the gateway speaks the envelope protocol if offered.
    if (was_offered(envelope::kSubprotocol)) subprotocol = envelope::kSubprotocol;
  } else {
    // Only one the client offered may be answered (RFC 6455 section 4.2.2).
    if (was_offered(reply.subprotocol())) subprotocol = reply.subprotocol();
    if (subprotocol.empty()) {
      // Not the value: browsers that cannot set headers smuggle bearer tokens through
      // Sec-WebSocket-Protocol, and a function may echo one back.
      FNGATE_LOG(Warning) << "[conn=" << id_ << "] function picked a subprotocol ("
                          << reply.subprotocol().size()
                          << " bytes) the client did not offer; ignored";
    }
  }
  // Only what is set: every string a protobuf message holds is one more allocation.
  if (!subprotocol.empty()) context.set_subprotocol(subprotocol);
  envelope_ = subprotocol == envelope::kSubprotocol;

  // The 101 (RFC 6455 section 4.2.2).
  const beast::string_view key = request[http::field::sec_websocket_key];
  std::string& response = hs_->response;
  absl::StrAppend(&response,
                  "HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: ",
                  ws::AcceptKey({key.data(), key.size()}), "\r\nServer: fngate\r\n");
  if (!subprotocol.empty()) absl::StrAppend(&response, "Sec-WebSocket-Protocol: ", subprotocol, "\r\n");
  if (state_.function(function_).settings().permessage_deflate) {
    std::string extensions;  // Every Sec-WebSocket-Extensions header, as one list.
    for (auto [it, end] = request.equal_range(http::field::sec_websocket_extensions); it != end;
         ++it) {
      absl::StrAppend(&extensions, extensions.empty() ? "" : ", ",
                      absl::string_view(it->value().data(), it->value().size()));
    }
    if (std::optional<std::string> answer = ws::NegotiateDeflate(extensions)) {
      deflate_ = true;
      absl::StrAppend(&response, "Sec-WebSocket-Extensions: ", *answer, "\r\n");
    }
  }
  response += "\r\n";

  // The connection exists from here: it is in the online table, and what is sent or closed
  // now (the reply's own actions first) is queued and written once the handshake is done.
  accepting_ = true;
  context_ = std::make_shared<const v1::ConnectionContext>(std::move(context));
  state_.table().Add(shared_from_this(), context_, std::move(hs_->user_agent));
  if (envelope_) EnqueueText(envelope::OpenFrame(id_, context_->user_id()));
  ApplyActions(*reply.mutable_actions());
  ArmHandshakeTimer();
  net::async_write(stream_, net::buffer(response),
                   [self = shared_from_this()](error_code ec, size_t) { self->OnAccept(ec); });
}

void Session::OnAccept(error_code ec) {
  // Bytes the client sent right behind its request are its first frames.
  const auto leftover = hs_->buffer.data();
  if (leftover.size() > 0) {
    pending_ = std::make_unique<std::string>(static_cast<const char*>(leftover.data()),
                                             leftover.size());
    paused_with_input_ = true;  // Framed before the first read (ReadNext).
  }
  hs_.reset();  // Cancels the handshake timer too.
  accepting_ = false;
  // A close timer (the connect reply closed it, or a drain) may have ended it meanwhile.
  if (socket_done_) return;
  if (ec) {
    // The function accepted it, so it hears the end too: its own close if one was queued.
    if (close_started_) return OnSocketDone(close_code_, close_reason_, closed_by_);
    return OnSocketDone(kCloseAbnormal, "", v1::CLOSED_BY_NETWORK);
  }
  open_ = true;
  metrics().connections_active.fetch_add(1, std::memory_order_relaxed);
  metrics().connections_total.fetch_add(1, std::memory_order_relaxed);
  if (limits().max_messages_per_second > 0) {
    rate_ = std::make_unique<TokenBucket>(limits().max_messages_per_second,
                                          limits().message_burst,
                                          std::chrono::steady_clock::now());
  }
  reader_.emplace(limits().max_message_bytes, bool{deflate_});  // After decompression, with deflate.
  if (!stream_.is_tls()) {
    // Reads happen only once the socket is readable (ReadNext), and writes go out at once
    // where they fit (WriteNext): neither may ever block the io thread.
    error_code blocking;
    stream_.socket().non_blocking(true, blocking);
    if (blocking) return OnSocketDone(kCloseAbnormal, "", v1::CLOSED_BY_NETWORK);
  }
  StartLifetimeTimer();
  heard_ = true;  // The handshake: the first keepalive tick only starts the count.
  FNGATE_LOG(Debug) << "[conn=" << id_ << "] open on " << context_->function() << " from "
                    << context_->client_address();
  if (!outbound_.empty()) WriteNext();  // Queued during the handshake.
  if (state_.draining()) BeginClose(kCloseGoingAway, "going away", v1::CLOSED_BY_SHUTDOWN, false);
  ReadNext();
}

void Session::StartLifetimeTimer() {
  if (limits().max_lifetime.count() == 0) return;
  lifetime_timer_ = std::make_unique<net::steady_timer>(stream_.get_executor());
  lifetime_timer_->expires_after(limits().max_lifetime);
  lifetime_timer_->async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->socket_done_) return;
    // Clients reconnect and land elsewhere: long-lived connections spread again.
    if (self->BeginClose(kCloseGoingAway, "connection lifetime reached",
                         v1::CLOSED_BY_TIMEOUT, /*urgent=*/false)) {
      self->CountLimit(LimitKind::kLifetime);
    }
  });
}

void Session::RespondHttp(int status, std::string body, bool version_header) {
  state_.metrics().CountHandshakeRefusal(status);
  auto response = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(status), hs_->request.version() == 10 ? 10 : 11);
  response->set(http::field::server, "fngate");
  response->set(http::field::content_type, "text/plain; charset=utf-8");
  if (version_header) response->set(http::field::sec_websocket_version, "13");
  response->keep_alive(false);
  response->body() = std::move(body);
  response->prepare_payload();
  ArmHandshakeTimer();
  http::async_write(stream_, *response,
                    [self = shared_from_this(), response](error_code, size_t) {
                      self->hs_->timer.cancel();
                      // The session (and the connection slots it holds) lives until the
                      // socket is closed.
                      LingeringClose(std::move(self->stream_.socket()),
                                     self->state_.settings().limits.handshake_timeout, self);
                    });
}

// ---------------------------------------------------------------------------------------------
// Reading

bool Session::ReadPaused() const {
  // Once our close frame is out, only the client's close is awaited: read on regardless.
  if (close_sent_) return false;
  return drain_pending_ || inbound_.size() >= limits().max_inbound_queue;
}

void Session::ReadNext() {
  if (consuming_ || reading_ || socket_done_ || !open_ || failing_ || close_received_) return;
  if (ReadPaused()) return;
  if (paused_with_input_) {
    // What arrived while reading was paused goes first.
    Consume(nullptr, 0);
    if (socket_done_ || failing_ || close_received_ || ReadPaused()) return;
  }
  reading_ = true;
  if (stream_.is_tls()) {
    stream_.async_read_some(stream_.tls_read_buffer(),
                            beast::bind_front_handler(&Session::OnTlsRead, shared_from_this()));
  } else {
    // No buffer is tied up while the connection is idle: wait until the kernel has bytes.
    stream_.socket().async_wait(
        net::ip::tcp::socket::wait_read,
        beast::bind_front_handler(&Session::OnReadable, shared_from_this()));
  }
}

void Session::OnReadable(error_code ec) {
  reading_ = false;
  if (socket_done_) return;
  size_t bytes = 0;
  if (!ec) {
    bytes = stream_.socket().read_some(net::buffer(ReadScratch(), kReadScratchBytes), ec);
    if (ec == net::error::would_block || ec == net::error::try_again) return ReadNext();
  }
  if (ec) return OnReadError(ec);
  heard_ = true;
  Consume(ReadScratch(), bytes);
  ReadNext();
}

void Session::OnTlsRead(error_code ec, size_t bytes) {
  reading_ = false;
  if (socket_done_) return;
  if (ec) return OnReadError(ec);
  heard_ = true;
  Consume(static_cast<const uint8_t*>(stream_.tls_read_buffer().data()), bytes);
  ReadNext();
}

void Session::OnReadError(error_code ec) {
  // Our close frame went out (or is queued): the client ended TCP instead of answering, which
  // ends our close all the same.
  if (close_started_) return OnSocketDone(close_code_, close_reason_, closed_by_);
  FNGATE_LOG(Debug) << "[conn=" << id_ << "] read: " << ec.message();
  OnSocketDone(kCloseAbnormal, "", v1::CLOSED_BY_NETWORK);
}

void Session::Consume(const uint8_t* data, size_t size) {
  std::string joined;
  if (pending_ != nullptr && !pending_->empty()) {
    pending_->append(reinterpret_cast<const char*>(data), size);
    joined.swap(*pending_);
    data = reinterpret_cast<const uint8_t*>(joined.data());
    size = joined.size();
  }
  paused_with_input_ = false;
  consuming_ = true;  // ReadNext() waits until this pass is over.
  while (size > 0 && !socket_done_ && !failing_ && !close_received_) {
    if (ReadPaused()) {
      paused_with_input_ = true;
      break;
    }
    size_t used = 0;
    const ws::FrameReader::Result result = reader_->Parse(data, size, used);
    data += used;
    size -= used;
    if (result == ws::FrameReader::Result::kNeedMore) break;  // An incomplete header is left.
    switch (result) {
      case ws::FrameReader::Result::kMessage:
        OnMessage(reader_->TakeMessage(), reader_->binary());
        break;
      case ws::FrameReader::Result::kPing:
        if (close_started_) break;  // The close frame answers now.
        // Only the latest ping needs its pong (RFC 6455 section 5.5.3).
        if (pong_ == nullptr) pong_ = std::make_unique<std::string>();
        pong_->assign(reader_->control_payload());
        if (!writing_) WriteNext();
        break;
      case ws::FrameReader::Result::kPong:
        break;  // Heard: that is all a pong is for.
      case ws::FrameReader::Result::kClose:
        OnClientClose(reader_->close_code(), std::string(reader_->close_reason()));
        break;
      case ws::FrameReader::Result::kError:
        OnProtocolError(reader_->error_code(), reader_->error_reason());
        break;
      case ws::FrameReader::Result::kNeedMore:
        break;
    }
  }
  consuming_ = false;
  if (size > 0 && !socket_done_ && !failing_ && !close_received_) {
    if (pending_ == nullptr) pending_ = std::make_unique<std::string>();
    pending_->assign(reinterpret_cast<const char*>(data), size);
  }
}

void Session::OnMessage(std::string data, bool binary) {
  if (close_sent_) return;  // After our close frame, data is read and dropped (RFC 6455 1.4).
  if (!AdmitMessage()) return;
  Inbound message;
  message.data = std::move(data);
  message.kind = binary ? OutboundMessage::Kind::kBinary : OutboundMessage::Kind::kText;
  last_activity_us_.store(UnixMicros(std::chrono::system_clock::now()),
                          std::memory_order_relaxed);
  messages_in_.Add(1);
  bytes_in_.Add(message.data.size());
  metrics().messages_in.fetch_add(1, std::memory_order_relaxed);
  metrics().bytes_in.fetch_add(message.data.size(), std::memory_order_relaxed);
  if (envelope_ && message.kind == OutboundMessage::Kind::kText && AnswerEnvelopeFrame(message)) {
    return;
  }
  message.sequence = next_sequence_++;
  inbound_.push_back(std::move(message));
  PumpMessages();
}

void Session::OnClientClose(int code, std::string reason) {
  close_received_ = true;
  if (close_sent_) return Teardown();  // It answers ours: the close handshake is done.
  if (close_started_) return;  // Ours is queued and answers it; then Teardown (OnWrite).
  // The client's goodbye: answered with its own code at once, ahead of anything queued.
  BeginClose(code, std::move(reason), v1::CLOSED_BY_CLIENT, /*urgent=*/true);
}

// The client broke RFC 6455 (or a message is over the limit): the close frame says why, and
// nothing more is read (RFC 6455 section 7.1.7).
void Session::OnProtocolError(int code, std::string_view reason) {
  FNGATE_LOG(Debug) << "[conn=" << id_ << "] failing the connection: " << code << " " << reason;
  CountLimit(LimitKindOfClose(code));
  failing_ = true;
  if (close_sent_) return Teardown();
  if (close_started_) return;  // Ours goes out, then Teardown (OnWrite).
  BeginClose(code, std::string(reason), v1::CLOSED_BY_LIMIT, /*urgent=*/true);
}

void Session::KeepaliveTick() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    if (!self->open_ || self->socket_done_) return;
    if (self->heard_) {
      self->heard_ = false;
      self->pinged_ = false;
    } else if (!self->pinged_) {
      self->pinged_ = true;
      if (!self->close_started_) {
        self->ping_due_ = true;
        if (!self->writing_) self->WriteNext();
      }
    } else {
      // Nothing for a whole idle timeout, not even a pong: the peer is presumed gone, and no
      // close frame is sent to it (1006).
      self->CountLimit(LimitKind::kIdle);
      self->OnSocketDone(kCloseAbnormal, "idle timeout", v1::CLOSED_BY_TIMEOUT);
    }
  });
}

// A message over the rate closes the connection with 1008; it and what is read after it
// (until the client's close frame) are dropped.
bool Session::AdmitMessage() {
  if (close_started_ && closed_by_ == v1::CLOSED_BY_LIMIT) return false;
  if (rate_ == nullptr || rate_->TryTake(std::chrono::steady_clock::now())) return true;
  if (BeginClose(kClosePolicy, "message rate exceeded", v1::CLOSED_BY_LIMIT, /*urgent=*/false)) {
    CountLimit(LimitKind::kRate);
    FNGATE_LOG(Info) << "[conn=" << id_ << "] over " << limits().max_messages_per_second
                     << " messages/s; closing";
  }
  return false;
}

void Session::PumpMessages() {
  const uint32_t max_in_flight = state_.function(function_).settings().max_in_flight;
  if (drop_inbound_ && !inbound_.empty()) {
    state_.metrics().inbound_dropped.fetch_add(inbound_.size(), std::memory_order_relaxed);
    inbound_.clear();
  }
  while (in_flight_ < max_in_flight && !inbound_.empty()) {
    Inbound message = std::move(inbound_.front());
    inbound_.pop_front();
    v1::MessageEvent event = NewEvent<v1::MessageEvent>();
    event.set_sequence(message.sequence);
    switch (message.kind) {
      case OutboundMessage::Kind::kBinary:
        event.mutable_payload()->set_binary(std::move(message.data));
        break;
      case OutboundMessage::Kind::kJson:
        event.mutable_payload()->set_json(std::move(message.data));
        break;
      default:
        event.mutable_payload()->set_text(std::move(message.data));
        break;
    }
    ++in_flight_;
    // The request id is "<connection id>-<number>": carry the number, build the string only
    // if the call fails and it has to be reported.
    const uint64_t request_number = request_counter_;
    state_.function(function_).OnMessage(
        std::move(event), [self = shared_from_this(), sequence = message.sequence,
                           request_number, ack_id = std::move(message.ack_id)](
                              const grpc::Status& status, v1::MessageResponse& reply) mutable {
          net::post(self->stream_.get_executor(),
                    [self, sequence, request_number, ack_id = std::move(ack_id), status,
                     reply = std::move(reply)]() mutable {
                      self->OnMessageReply(sequence, request_number, ack_id, status,
                                           std::move(reply));
                    });
        });
  }
  ReadNext();  // Resumes reading if it was paused on a full inbound queue.
  if (drain_pending_ && in_flight_ == 0 && inbound_.empty()) {
    BeginClose(kCloseGoingAway, "going away", v1::CLOSED_BY_SHUTDOWN, /*urgent=*/false);
  }
  MaybeSendDisconnect();
}

void Session::OnMessageReply(uint64_t sequence, uint64_t request_number,
                             const std::string& ack_id, const grpc::Status& status,
                             v1::MessageResponse reply) {
  --in_flight_;
  if (status.ok()) {
    ApplyActions(*reply.mutable_actions());
    if (!ack_id.empty()) EnqueueText(envelope::AckFrame(ack_id, absl::OkStatus()));
  } else if (envelope_) {
    // An envelope client is told in an ack (or an error frame) and stays connected.
    const std::string request_id = absl::StrCat(id_, "-", request_number);
    FNGATE_LOG(Warning) << "[conn=" << id_ << "] message event " << request_id
                        << " failed: " << status.error_code() << " " << status.error_message();
    FireError(v1::EVENT_KIND_MESSAGE, request_id, status, sequence);
    const absl::Status error = FromGrpcStatus(status);
    EnqueueText(ack_id.empty()
                    ? envelope::ErrorFrame(absl::StrCat("message ", sequence, " failed: ",
                                                        absl::StatusCodeToString(error.code()),
                                                        ": ", error.message()))
                    : envelope::AckFrame(ack_id, error));
  } else {
    const std::string request_id = absl::StrCat(id_, "-", request_number);
    FNGATE_LOG(Warning) << "[conn=" << id_ << "] message event " << request_id
                        << " failed: " << status.error_code() << " " << status.error_message();
    FireError(v1::EVENT_KIND_MESSAGE, request_id, status, sequence);
    if (state_.function(function_).settings().on_message_error == MessageErrorPolicy::kClose) {
      drop_inbound_ = true;
      const int code = CloseCodeForFailure(status);
      BeginClose(code, code == kCloseTryAgainLater ? "function unavailable" : "function error",
                 v1::CLOSED_BY_ERROR, /*urgent=*/false);
    }
  }
  PumpMessages();
}

bool Session::AnswerEnvelopeFrame(Inbound& message) {
  envelope::ClientFrame frame =
      envelope::ParseClientFrame(message.data, state_.settings().limits.max_message_bytes);
  if (!frame.status.ok()) {
    const absl::string_view problem = frame.status.message();
    EnqueueText(frame.ack_id.empty() ? envelope::ErrorFrame({problem.data(), problem.size()})
                                     : envelope::AckFrame(frame.ack_id, frame.status));
    return true;
  }
  if (frame.type == envelope::ClientFrameType::kPing) {
    EnqueueText(envelope::PongFrame());
    return true;
  }
  if (frame.data.has_json()) {
    message.kind = OutboundMessage::Kind::kJson;
    message.data = std::move(*frame.data.mutable_json());
  } else {
    message.data = std::move(*frame.data.mutable_text());
  }
  message.ack_id = std::move(frame.ack_id);
  return false;
}

void Session::EnqueueText(std::string text) {
  auto message = std::make_shared<OutboundMessage>();
  message->kind = OutboundMessage::Kind::kEvent;  // Sent as it is, in either mode.
  message->data = std::move(text);
  Enqueue(std::move(message));
}

void Session::FireError(v1::EventKind failed, const std::string& failed_request_id,
                        const grpc::Status& status, uint64_t sequence) {
  v1::ErrorEvent event = NewEvent<v1::ErrorEvent>();
  event.set_failed_event(failed);
  event.set_failed_request_id(failed_request_id);
  event.set_code(status.error_code());
  event.set_message(status.error_message());
  event.set_sequence(sequence);
  ++pending_errors_;
  state_.function(function_).OnError(
      std::move(event), [self = shared_from_this()](const grpc::Status& status,
                                                    v1::ErrorResponse&) {
        if (!status.ok()) {
          // Reported once here; an error about an error has nowhere else to go.
          FNGATE_LOG(Debug) << "[conn=" << self->id_
                            << "] error event not delivered: " << status.error_message();
        }
        net::post(self->stream_.get_executor(), [self] {
          --self->pending_errors_;
          self->MaybeSendDisconnect();
        });
      });
}

bool Session::TakeSelf(ResolvedTarget& targets) const {
  auto& recipients = targets.recipients;
  auto it = std::find_if(recipients.begin(), recipients.end(),
                         [this](const ResolvedTarget::Recipient& r) { return r.session.get() == this; });
  if (it == recipients.end()) return false;
  *it = std::move(recipients.back());
  recipients.pop_back();
  return true;
}

void Session::ApplyActions(google::protobuf::RepeatedPtrField<v1::Action>& actions) {
  // An empty target means this connection. This connection, when a target includes it, is
  // served here and now, so that a later action of the same reply cannot overtake it.
  auto resolve = [this](const v1::Target& target, bool& self) {
    ResolvedTarget targets;
    if (IsEmptyTarget(target)) {
      self = true;
    } else {
      targets = state_.table().Resolve(target);
      self = TakeSelf(targets);
    }
    return targets;
  };
  auto close_code = [this](int code) {
    code = code == 0 ? kCloseNormal : code;
    if (IsSendableCloseCode(code)) return code;
    FNGATE_LOG(Warning) << "[conn=" << id_ << "] function asked for close code " << code
                        << ", which a server may not send; using 1011";
    return kCloseInternalError;
  };
  for (v1::Action& action : actions) {
    bool self = false;
    switch (action.action_case()) {
      case v1::Action::kSend: {
        v1::Action::Send& send = *action.mutable_send();
        if (send.payload().has_json() &&
            !envelope::ValidateJson(send.payload().json(), kMaxReplyJsonBytes).ok()) {
          FNGATE_LOG(Warning) << "[conn=" << id_ << "] function sent invalid JSON; ignored";
          break;
        }
        OutboundMessagePtr message = MessageFromPayload(std::move(*send.mutable_payload()));
        ResolvedTarget targets = resolve(send.target(), self);
        if (self) Enqueue(message);
        if (!targets.recipients.empty()) {
          SendToTargets(std::move(targets), std::move(message), nullptr, [](FanoutResult) {});
        }
        break;
      }
      case v1::Action::kClose: {
        const v1::Action::Close& close = action.close();
        auto order = std::make_shared<CloseOrder>(CloseOrder{
            close_code(close.code()), TrimReason(close.reason()), v1::CLOSED_BY_FUNCTION});
        ResolvedTarget targets = resolve(close.target(), self);
        if (!targets.recipients.empty()) CloseTargets(std::move(targets), order, [](FanoutResult) {});
        if (self) BeginClose(order->code, order->reason, order->by, false);
        break;
      }
      case v1::Action::kEmit: {
        const v1::Action::Emit& emit = action.emit();
        if (!IsValidEventName(emit.name()) ||
            (!emit.data_json().empty() &&
             !envelope::ValidateJson(emit.data_json(), kMaxReplyJsonBytes).ok())) {
          FNGATE_LOG(Warning) << "[conn=" << id_ << "] function emitted a malformed event name "
                              << "or data; ignored";
          break;
        }
        OutboundMessagePtr message = EventMessage(emit.name(), emit.data_json());
        std::shared_ptr<CloseOrder> order;
        if (emit.close()) {
          order = std::make_shared<CloseOrder>(CloseOrder{
              close_code(emit.code()), TrimReason(emit.reason()), v1::CLOSED_BY_FUNCTION});
        }
        ResolvedTarget targets = resolve(emit.target(), self);
        if (!targets.recipients.empty()) {
          SendToTargets(std::move(targets), message, order, [](FanoutResult) {});
        }
        if (self && Enqueue(message) == SendOutcome::kQueued && order != nullptr) {
          BeginClose(order->code, order->reason, order->by, false);
        }
        break;
      }
      case v1::Action::kJoin:
      case v1::Action::kLeave:
      case v1::Action::kBind: {
        const bool join = action.has_join();
        v1::Target target = join ? action.join().target()
                            : action.has_leave() ? action.leave().target()
                                                 : action.bind().target();
        if (IsEmptyTarget(target)) target.add_connection_ids(id_);
        if (action.has_bind()) {
          if (absl::Status valid = ValidateIdentity(action.bind().identity()); !valid.ok()) {
            FNGATE_LOG(Warning) << "[conn=" << id_ << "] function's Bind ignored: "
                                << valid.message();
            break;
          }
        }
        Strings groups;
        if (!action.has_bind()) {
          groups = ValidGroups(id_, join ? action.join().groups() : action.leave().groups());
        }
        state_.table().Modify(
            target,
            [&](v1::ConnectionContext& c) {
              if (action.has_bind()) return ApplyIdentity(action.bind().identity(), c);
              return join ? JoinGroups(groups, c) : LeaveGroups(groups, c);
            },
            nullptr);
        // The next event of this connection may go out before the posted refresh runs.
        if (auto latest = state_.table().ContextOf(id_)) context_ = std::move(latest);
        break;
      }
      case v1::Action::ACTION_NOT_SET:
        break;
    }
  }
}

void Session::OnSocketDone(int code, std::string reason, v1::ClosedBy by) {
  if (socket_done_) return;
  socket_done_ = true;
  if (close_timer_) close_timer_->cancel();
  if (lifetime_timer_) lifetime_timer_->cancel();
  slots_.Release();  // The socket is closed below: its address may connect again.
  state_.table().Remove(id_);
  if (open_) {
    open_ = false;
    metrics().connections_active.fetch_sub(1, std::memory_order_relaxed);
  }
  close_code_ = code;
  close_reason_ = std::move(reason);
  closed_by_ = by;
  state_.metrics().CountClose(code);
  outbound_.clear();
  outbound_bytes_ = 0;
  pending_.reset();
  if (!reading_ && !writing_ && !accepting_ && !stream_.is_tls() && close_started_) {
    // After a close frame: FIN, then drop what the client still sends until it closes, so
    // that a reset cannot destroy our close frame before the client read it.
    LingeringClose(std::move(stream_.socket()), limits().handshake_timeout);  // 2 s at most.
  } else {
    // A read or write may still be running (a client that half-closed while we wrote, a
    // timeout): closing stops it.
    error_code ignored;
    stream_.socket().close(ignored);
  }
  FNGATE_LOG(Debug) << "[conn=" << id_ << "] closed " << code << " by "
                    << v1::ClosedBy_Name(by);
  PumpMessages();  // What was read still goes out, then the disconnect event.
}

void Session::Teardown() {
  if (socket_done_) return;
  if (!stream_.is_tls()) return OnSocketDone(close_code_, close_reason_, closed_by_);
  // wss://: close_notify first; the close timer (BeginClose) bounds the wait for the client's.
  stream_.async_shutdown([self = shared_from_this()](error_code) {
    self->OnSocketDone(self->close_code_, self->close_reason_, self->closed_by_);
  });
}

void Session::MaybeSendDisconnect() {
  if (!socket_done_ || disconnect_sent_ || !live_) return;
  if (in_flight_ > 0 || pending_errors_ > 0 || !inbound_.empty()) return;
  disconnect_sent_ = true;
  v1::DisconnectEvent event = NewEvent<v1::DisconnectEvent>();
  event.set_close_code(close_code_);
  event.set_close_reason(close_reason_);
  event.set_closed_by(closed_by_);
  state_.function(function_).OnDisconnect(
      std::move(event), [self = shared_from_this()](const grpc::Status&,
                                                    v1::DisconnectResponse&) {
        // A lost one is retried, then logged and counted, by FunctionClient.
        // live_ is only read on the strand before disconnect_sent_; this is the last use.
        self->state_.RemoveLive();
      });
}

// ---------------------------------------------------------------------------------------------
// Writing

void Session::Send(OutboundMessagePtr message, std::shared_ptr<const CloseOrder> then_close,
                   absl::AnyInvocable<void(SendOutcome)> done) {
  net::post(stream_.get_executor(), [self = shared_from_this(), message = std::move(message),
                                 then_close = std::move(then_close),
                                 done = std::move(done)]() mutable {
    const SendOutcome outcome = self->Enqueue(std::move(message));
    if (outcome == SendOutcome::kQueued && then_close != nullptr) {
      self->BeginClose(then_close->code, then_close->reason, then_close->by, /*urgent=*/false);
    }
    done(outcome);
  });
}

void Session::Close(int code, std::string reason, v1::ClosedBy by, bool urgent,
                    absl::AnyInvocable<void(bool)> done) {
  net::post(stream_.get_executor(), [self = shared_from_this(), code, reason = std::move(reason), by,
                                 urgent, done = std::move(done)]() mutable {
    done(self->BeginClose(code, std::move(reason), by, urgent));
  });
}

void Session::Drain() {
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->StartDrain(); });
}

void Session::StartDrain() {
  if (!(open_ || accepting_) || close_started_ || drain_pending_) return;
  drain_pending_ = true;  // Reads no more (ReadNext); PumpMessages closes once all is answered.
  if (in_flight_ == 0 && inbound_.empty()) {
    BeginClose(kCloseGoingAway, "going away", v1::CLOSED_BY_SHUTDOWN, /*urgent=*/false);
    return;
  }
  // A quarter of the grace for the replies, half for the close handshake (BeginClose), the rest
  // for the disconnect event.
  close_timer_ = std::make_unique<net::steady_timer>(stream_.get_executor());
  close_timer_->expires_after(state_.settings().drain_grace / 4);
  close_timer_->async_wait([self = shared_from_this()](error_code ec) {
    if (!ec) self->BeginClose(kCloseGoingAway, "going away", v1::CLOSED_BY_SHUTDOWN, false);
  });
}

void Session::RefreshIdentity() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    if (auto latest = self->state_.table().ContextOf(self->id_)) {
      self->context_ = std::move(latest);
    }
  });
}

void Session::FillStats(v1::ConnectionInfo& info) const {
  const int64_t us = last_activity_us_.load(std::memory_order_relaxed);
  info.mutable_last_activity()->set_seconds(us / 1000000);
  info.mutable_last_activity()->set_nanos(static_cast<int32_t>(us % 1000000) * 1000);
  info.set_messages_in(messages_in_.Get());
  info.set_messages_out(messages_out_.Get());
  info.set_bytes_in(bytes_in_.Get());
  info.set_bytes_out(bytes_out_.Get());
}


SendOutcome Session::Enqueue(OutboundMessagePtr message) {
  if (!(open_ || accepting_) || close_started_) return SendOutcome::kGone;
  const uint64_t size = QueuedCost(message->data.size());
  if (outbound_bytes_ + writing_bytes_ + size > limits().max_outbound_bytes) {
    if (limits().slow_consumer == SlowConsumerPolicy::kDropOldest) {
      if (!DropOldest(size)) return SendOutcome::kOverflow;
    } else {
      // A reader this slow would cost unbounded memory: it is closed, and the sender told.
      state_.metrics().slow_consumer_drops.fetch_add(1, std::memory_order_relaxed);
      FNGATE_LOG(Info) << "[conn=" << id_ << "] slow consumer: "
                       << outbound_bytes_ + writing_bytes_ << " bytes queued; closing";
      CountLimit(LimitKind::kSlowConsumer);
      BeginClose(kClosePolicy, "slow consumer", v1::CLOSED_BY_LIMIT, /*urgent=*/true);
      return SendOutcome::kOverflow;
    }
  }
  outbound_bytes_ += size;
  outbound_.push_back(Outbound{std::move(message)});
  if (open_ && !writing_) WriteNext();  // Else OnAccept() or OnWrite() goes on.
  return SendOutcome::kQueued;
}

// slow_consumer: drop_oldest. Drops the oldest queued messages, never those being written (a
// frame cannot be cut), until `size` more bytes fit. When even that is not enough, drops
// nothing and the new message is the one dropped (false).
bool Session::DropOldest(uint64_t size) {
  const uint64_t max_bytes = limits().max_outbound_bytes;
  const uint64_t held = outbound_bytes_ + writing_bytes_;
  size_t count = 0;
  uint64_t freed = 0;
  while (held - freed + size > max_bytes && count < outbound_.size()) {
    // No close frame is queued here: Enqueue refuses once a close started.
    freed += QueuedCost(outbound_[count].message->data.size());
    ++count;
  }
  CountLimit(LimitKind::kSlowConsumer);
  if (held - freed + size > max_bytes) {
    metrics().outbound_dropped.fetch_add(1, std::memory_order_relaxed);  // The new one.
    return false;
  }
  metrics().outbound_dropped.fetch_add(count, std::memory_order_relaxed);
  outbound_.erase(0, count);
  outbound_bytes_ -= freed;
  return true;
}

bool Session::BeginClose(int code, std::string reason, v1::ClosedBy by, bool urgent) {
  if (!(open_ || accepting_) || close_started_) return false;
  close_started_ = true;
  close_code_ = code;
  close_reason_ = std::move(reason);
  closed_by_ = by;
  if (urgent) {
    // What is already with the socket finishes (a frame cannot be cut); the rest is dropped.
    outbound_.clear();
    outbound_bytes_ = 0;
  }
  outbound_.push_back(Outbound{nullptr});
  if (open_ && !writing_) WriteNext();
  // Bounds the whole goodbye: a write stuck behind a client that reads nothing, a client that
  // never answers our close frame. When draining, it also leaves half the grace period to
  // deliver the disconnect event of a client that never answers.
  std::chrono::milliseconds goodbye = state_.settings().limits.handshake_timeout;
  if (by == v1::CLOSED_BY_SHUTDOWN) goodbye = std::min(goodbye, state_.settings().drain_grace / 2);
  close_timer_ = std::make_unique<net::steady_timer>(stream_.get_executor());
  close_timer_->expires_after(goodbye);
  close_timer_->async_wait([self = shared_from_this()](error_code ec) {
    if (!ec) self->OnSocketDone(self->close_code_, self->close_reason_, self->closed_by_);
  });
  return true;
}

// Writes what is due -- a pong, a keepalive ping, then queued frames in order, our close frame
// last -- as one batch: one system call on a plain socket, however many frames.
void Session::WriteNext() {
  if (writing_ || socket_done_ || !open_ || close_sent_) return;
  if (outbound_.empty() && pong_ == nullptr && !ping_due_) return;
  auto batch = std::make_unique<WriteBatch>();
  // Frames this batch will hold, at most: the pong, the ping, messages, our close frame.
  const size_t frames = std::min<size_t>(outbound_.size(), kMaxBatchFrames + 1) + 2;
  batch->Reserve(frames, /*own_payloads=*/deflate_ || pong_ != nullptr || close_started_);
  if (pong_ != nullptr) {
    batch->AddOwned(ws::Opcode::kPong, std::move(*pong_), false);
    pong_.reset();
  }
  if (ping_due_) {
    ping_due_ = false;
    batch->Add(ws::Opcode::kPing, {}, false);
  }
  while (!outbound_.empty() && batch->messages.size() < kMaxBatchFrames &&
         batch->payload_bytes < kMaxBatchBytes) {
    Outbound& next = outbound_.front();
    if (next.message == nullptr) {
      batch->AddOwned(ws::Opcode::kClose, ws::ClosePayload(close_code_, close_reason_),
                      false);
      batch->close = true;
      outbound_.pop_front();
      break;
    }
    const OutboundMessage& message = *next.message;
    const std::string& data = envelope_ ? message.EnvelopeData() : message.data;
    const ws::Opcode opcode = message.binary() ? ws::Opcode::kBinary : ws::Opcode::kText;
    if (deflate_) {
      batch->AddOwned(opcode, ws::DeflateMessage(data), true);
    } else {
      batch->Add(opcode, data, false);
    }
    batch->payload_bytes += message.data.size();
    batch->cost += QueuedCost(message.data.size());
    batch->messages.push_back(std::move(next.message));
    outbound_.pop_front();
  }
  if (batch->headers.empty()) return;
  outbound_bytes_ -= batch->cost;
  writing_bytes_ = batch->cost;
  writing_ = true;
  const std::span<const net::const_buffer> buffers(batch->buffers.data(),
                                                   batch->buffers.size());
  beast::buffers_suffix<std::span<const net::const_buffer>> rest(buffers);
  if (!stream_.is_tls()) {
    // Most batches fit in the socket's send buffer: written here and now (the socket is
    // non-blocking), without an asynchronous write operation; only what does not fit waits
    // for the socket, below. The batch still completes through OnWrite, posted: frames
    // queued meanwhile (the rest of a burst of replies) gather into the next batch, and no
    // caller sees the connection end inside its own call.
    error_code ec;
    const size_t written = stream_.socket().write_some(buffers, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      ec = {};
    } else if (ec || written == net::buffer_size(buffers)) {
      net::post(stream_.get_executor(),
                [self = shared_from_this(), batch = std::move(batch), ec]() mutable {
                  self->OnWrite(std::move(batch), ec);
                });
      return;
    } else {
      rest.consume(written);
    }
  }
  net::async_write(stream_, rest,
                   [self = shared_from_this(), batch = std::move(batch)](
                       error_code ec, size_t) mutable { self->OnWrite(std::move(batch), ec); });
}

void Session::CountWritten(const WriteBatch& batch) {
  messages_out_.Add(batch.messages.size());
  bytes_out_.Add(batch.payload_bytes);
  metrics().messages_out.fetch_add(batch.messages.size(), std::memory_order_relaxed);
  metrics().bytes_out.fetch_add(batch.payload_bytes, std::memory_order_relaxed);
}

void Session::OnWrite(std::unique_ptr<WriteBatch> batch, error_code ec) {
  writing_ = false;
  writing_bytes_ = 0;
  if (socket_done_) return;  // The connection ended meanwhile and dropped its queue.
  if (ec) {
    outbound_.clear();
    outbound_bytes_ = 0;
    // A close under way (the client's, ours, a protocol failure) ends as that close: a client
    // may reset the connection right after its close frame, before ours could be written.
    if (close_started_) return OnSocketDone(close_code_, close_reason_, closed_by_);
    // The read side reports how the connection ended; if it is paused, report here.
    if (!reading_) OnSocketDone(kCloseAbnormal, "", v1::CLOSED_BY_NETWORK);
    return;
  }
  CountWritten(*batch);
  if (batch->close) {
    close_sent_ = true;
    // The close handshake is done when the client's close came first, or when the client broke
    // the protocol (no answer is awaited); else its answer is read (ReadNext resumes a paused
    // read for it).
    if (close_received_ || failing_) return Teardown();
    return ReadNext();
  }
  if (!outbound_.empty() || pong_ != nullptr || ping_due_) WriteNext();
}

}  // namespace fngate::gateway
