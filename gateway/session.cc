#include "gateway/session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "gateway/client_address.h"
#include "gateway/connection_id.h"
#include "gateway/fanout.h"
#include "gateway/origin.h"
#include "gateway/url.h"

namespace fngate::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace websocket = beast::websocket;

namespace {

void SetTimestamp(std::chrono::system_clock::time_point t, google::protobuf::Timestamp& out) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
  out.set_seconds(ns.count() / 1000000000);
  out.set_nanos(static_cast<int32_t>(ns.count() % 1000000000));
}

std::string EndpointText(const net::ip::tcp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  return endpoint.address().is_v6() ? absl::StrCat("[", address, "]:", endpoint.port())
                                    : absl::StrCat(address, ":", endpoint.port());
}

// Cuts a close reason to the 123 bytes a close frame holds, on a UTF-8 boundary.
std::string TrimReason(std::string reason) {
  if (reason.size() <= kMaxCloseReasonBytes) return reason;
  size_t n = kMaxCloseReasonBytes;
  while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
  reason.resize(n);
  return reason;
}

// What a queued message counts against max_outbound_bytes: its payload plus the queue entry,
// so that empty messages cannot pile up for free.
uint64_t QueuedCost(uint64_t payload_bytes) { return payload_bytes + 64; }

int CloseCodeForFailure(const grpc::Status& status) {
  // No worker took it, or the worker is overloaded: "try again later". Otherwise the function
  // (or its deadline) failed: "internal error".
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                 status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED
             ? kCloseTryAgainLater
             : kCloseInternalError;
}

}  // namespace

Session::Session(net::ip::tcp::socket&& socket, GatewayState& state)
    : ws_(std::move(socket), state.tls() != nullptr ? state.tls()->Current() : nullptr),
      state_(state),
      id_(NewConnectionId()) {}

// The listener took a socket slot for this session (GatewayState::TryAddSocket).
Session::~Session() { state_.RemoveSocket(); }

FunctionMetrics& Session::metrics() { return state_.metrics().function(function_); }

std::string Session::NextRequestId() { return absl::StrCat(id_, "-", ++request_counter_); }

template <typename Event>
Event Session::NewEvent() {
  Event event;
  *event.mutable_connection() = context_;
  event.set_request_id(NextRequestId());
  return event;
}

void Session::Start() {
  net::dispatch(ws_.get_executor(), [self = shared_from_this()] {
    if (!self->ws_.next_layer().is_tls()) return self->ReadRequest();
    // wss://: the TLS handshake counts against the handshake timeout too.
    beast::get_lowest_layer(self->ws_).expires_after(
        self->state_.settings().limits.handshake_timeout);
    self->ws_.next_layer().async_handshake([self](beast::error_code ec) {
      if (ec) {
        FNGATE_LOG(Debug) << "[conn=" << self->id_ << "] no TLS handshake: " << ec.message();
        return;
      }
      self->ReadRequest();
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Handshake

void Session::ReadRequest() {
  parser_.emplace();
  parser_->header_limit(16 * 1024);
  beast::get_lowest_layer(ws_).expires_after(state_.settings().limits.handshake_timeout);
  http::async_read(ws_.next_layer(), http_buffer_, *parser_,
                   beast::bind_front_handler(&Session::OnRequest, shared_from_this()));
}

void Session::OnRequest(beast::error_code ec, size_t /*bytes*/) {
  if (ec) {
    // A half-sent request, garbage, or a timeout: nothing was accepted, nobody to tell.
    FNGATE_LOG(Debug) << "[conn=" << id_ << "] no upgrade request: " << ec.message();
    return;
  }
  request_ = parser_->release();
  parser_.reset();
  // From here the connect deadline bounds the wait, then the websocket stream's own timeouts.
  beast::get_lowest_layer(ws_).expires_never();
  if (!websocket::is_upgrade(request_)) {
    return RespondHttp(426, "fngate: this endpoint speaks WebSocket only\n");
  }
  const RequestTarget target =
      ParseRequestTarget(std::string_view(request_.target().data(), request_.target().size()));
  function_ = state_.FindFunction(target.function);
  if (function_ < 0) return RespondHttp(404, "fngate: no such function\n");
  if (!OriginAllowed(state_.function(function_).settings().allowed_origins,
                     request_[http::field::origin])) {
    return RespondHttp(403, "fngate: origin not allowed\n");
  }
  // Counted before the draining check: a drain starting in between then waits for this one.
  state_.AddLive();
  if (state_.draining()) {
    state_.RemoveLive();
    return RespondHttp(503, "fngate: shutting down\n");
  }
  live_ = true;  // Owes the function a disconnect event once accepted.

  beast::error_code ignored;
  const auto& socket = beast::get_lowest_layer(ws_).socket();
  const auto now = std::chrono::system_clock::now();
  context_.set_connection_id(id_);
  context_.set_function(target.function);
  context_.set_path(target.path);
  for (const auto& [key, value] : target.query) (*context_.mutable_query())[key] = value;
  for (const std::string& name : state_.settings().forward_headers) {
    auto it = request_.find(beast::string_view(name.data(), name.size()));
    if (it != request_.end()) {
      (*context_.mutable_headers())[name] = std::string(it->value());
    }
  }
  if (auto it = request_.find(http::field::user_agent); it != request_.end()) {
    user_agent_ = std::string(it->value());
  }
  context_.set_client_address(ClientAddressOf(socket.remote_endpoint(ignored)));
  SetTimestamp(now, *context_.mutable_connected_at());
  context_.set_gateway(state_.control_advertise());
  last_activity_ = now;

  v1::ConnectEvent event = NewEvent<v1::ConnectEvent>();
  if (auto it = request_.find(http::field::sec_websocket_protocol); it != request_.end()) {
    const absl::string_view offered(it->value().data(), it->value().size());
    for (absl::string_view p : absl::StrSplit(offered, ',', absl::SkipWhitespace())) {
      event.add_subprotocols(std::string(absl::StripAsciiWhitespace(p)));
    }
  }
  std::string request_id = event.request_id();
  state_.function(function_).OnConnect(
      std::move(event), [self = shared_from_this(), request_id = std::move(request_id)](
                            const grpc::Status& status, v1::ConnectResponse& reply) {
        net::post(self->ws_.get_executor(),
                  [self, request_id, status, reply = std::move(reply)]() mutable {
                    self->OnConnectReply(request_id, status, std::move(reply));
                  });
      });
}

// The peer, or behind trusted proxies the client they name in X-Forwarded-For.
std::string Session::ClientAddressOf(const net::ip::tcp::endpoint& peer) const {
  const std::vector<IpNetwork>& trusted = state_.settings().trusted_proxies;
  if (!trusted.empty()) {
    std::string forwarded_for;  // Every X-Forwarded-For header, in order, as one list.
    for (auto [it, end] = request_.equal_range("x-forwarded-for"); it != end; ++it) {
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
  if (!reply.user_id().empty()) context_.set_user_id(reply.user_id());
  for (const auto& [key, value] : reply.metadata()) (*context_.mutable_metadata())[key] = value;
  std::string subprotocol;
  if (!reply.subprotocol().empty()) {
    // Only one the client offered may be answered (RFC 6455 section 4.2.2).
    const absl::string_view offered(request_[http::field::sec_websocket_protocol].data(),
                                    request_[http::field::sec_websocket_protocol].size());
    for (absl::string_view p : absl::StrSplit(offered, ',', absl::SkipWhitespace())) {
      if (absl::StripAsciiWhitespace(p) == reply.subprotocol()) subprotocol = reply.subprotocol();
    }
    if (subprotocol.empty()) {
      // Not the value: browsers that cannot set headers smuggle bearer tokens through
      // Sec-WebSocket-Protocol, and a function may echo one back.
      FNGATE_LOG(Warning) << "[conn=" << id_ << "] function picked a subprotocol ("
                          << reply.subprotocol().size()
                          << " bytes) the client did not offer; ignored";
    }
  }
  context_.set_subprotocol(subprotocol);
  first_actions_ = std::move(*reply.mutable_actions());

  const LimitSettings& limits = state_.settings().limits;
  websocket::stream_base::timeout timeouts;
  timeouts.handshake_timeout = limits.handshake_timeout;
  timeouts.idle_timeout = limits.idle_timeout;
  timeouts.keep_alive_pings = true;  // Ping at half the idle timeout; close if nothing comes.
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator(
      [subprotocol](websocket::response_type& response) {
        response.set(http::field::server, "fngate");
        if (!subprotocol.empty()) response.set(http::field::sec_websocket_protocol, subprotocol);
      }));
  ws_.read_message_max(limits.max_message_bytes);
  ws_.auto_fragment(false);  // One frame per message: fewer headers, fewer writes.
  // The connection exists from here: it is in the online table, and what is sent or closed
  // now (the reply's own actions first) is queued and written once the handshake is done.
  accepting_ = true;
  state_.registry().Add(id_, weak_from_this());
  ApplyActions(first_actions_);
  first_actions_.Clear();
  ws_.async_accept(request_, beast::bind_front_handler(&Session::OnAccept, shared_from_this()));
}

void Session::OnAccept(beast::error_code ec) {
  request_ = {};
  http_buffer_ = beast::flat_buffer();
  accepting_ = false;
  if (ec) {
    // The function accepted it, so it hears the end too: its own close if one was queued.
    if (close_started_) return OnSocketDone(close_code_, close_reason_, closed_by_);
    return OnSocketDone(kCloseAbnormal, "", v1::CLOSED_BY_NETWORK);
  }
  open_ = true;
  metrics().connections_active.fetch_add(1, std::memory_order_relaxed);
  metrics().connections_total.fetch_add(1, std::memory_order_relaxed);
  FNGATE_LOG(Debug) << "[conn=" << id_ << "] open on " << context_.function() << " from "
                    << context_.client_address();
  if (!outbound_.empty()) WriteNext();  // Queued during the handshake.
  if (state_.draining()) BeginClose(kCloseGoingAway, "going away", v1::CLOSED_BY_SHUTDOWN, false);
  ReadNext();
}

void Session::RespondHttp(int status, std::string body) {
  state_.metrics().CountHandshakeRefusal(status);
  auto response = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(status), request_.version() == 10 ? 10 : 11);
  response->set(http::field::server, "fngate");
  response->set(http::field::content_type, "text/plain; charset=utf-8");
  response->keep_alive(false);
  response->body() = std::move(body);
  response->prepare_payload();
  http::async_write(ws_.next_layer(), *response,
                    [self = shared_from_this(), response](beast::error_code, size_t) {
                      beast::error_code ignored;
                      beast::get_lowest_layer(self->ws_).socket().shutdown(
                          net::ip::tcp::socket::shutdown_both, ignored);
                    });
}

// ---------------------------------------------------------------------------------------------
// Reading and events

void Session::ReadNext() {
  if (reading_ || socket_done_ || !open_) return;
  if (inbound_.size() >= state_.settings().limits.max_inbound_queue) return;  // Backpressure.
  reading_ = true;
  ws_.async_read(read_buffer_, beast::bind_front_handler(&Session::OnRead, shared_from_this()));
}

void Session::OnRead(beast::error_code ec, size_t bytes) {
  reading_ = false;
  if (ec) {
    if (close_started_) return OnSocketDone(close_code_, close_reason_, closed_by_);
    if (ec == websocket::error::closed) {
      const websocket::close_reason& reason = ws_.reason();
      return OnSocketDone(reason.code == websocket::close_code::none ? 1005 : reason.code,
                          std::string(reason.reason.data(), reason.reason.size()),
                          v1::CLOSED_BY_CLIENT);
    }
    if (ec == websocket::error::message_too_big) {
      return OnSocketDone(kCloseTooBig, "message too big", v1::CLOSED_BY_LIMIT);
    }
    if (ec == websocket::error::bad_frame_payload) {
      return OnSocketDone(1007, "invalid payload", v1::CLOSED_BY_LIMIT);
    }
    if (ec == websocket::condition::protocol_violation) {
      return OnSocketDone(1002, "protocol error", v1::CLOSED_BY_LIMIT);
    }
    if (ec == beast::error::timeout) {
      return OnSocketDone(kCloseAbnormal, "idle timeout", v1::CLOSED_BY_TIMEOUT);
    }
    return OnSocketDone(kCloseAbnormal, "", v1::CLOSED_BY_NETWORK);
  }
  Inbound message;
  message.data = beast::buffers_to_string(read_buffer_.data());
  message.binary = ws_.got_binary();
  message.sequence = next_sequence_++;
  read_buffer_.consume(bytes);
  if (read_buffer_.capacity() > 64 * 1024) read_buffer_ = beast::flat_buffer();  // Give back.
  last_activity_ = std::chrono::system_clock::now();
  ++messages_in_;
  bytes_in_ += message.data.size();
  metrics().messages_in.fetch_add(1, std::memory_order_relaxed);
  metrics().bytes_in.fetch_add(message.data.size(), std::memory_order_relaxed);
  inbound_.push_back(std::move(message));
  PumpMessages();
  ReadNext();
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
    if (message.binary) {
      event.mutable_payload()->set_binary(std::move(message.data));
    } else {
      event.mutable_payload()->set_text(std::move(message.data));
    }
    ++in_flight_;
    // The request id is "<connection id>-<number>": carry the number, build the string only
    // if the call fails and it has to be reported.
    const uint64_t request_number = request_counter_;
    state_.function(function_).OnMessage(
        std::move(event), [self = shared_from_this(), sequence = message.sequence,
                           request_number](const grpc::Status& status,
                                           v1::MessageResponse& reply) {
          net::post(self->ws_.get_executor(), [self, sequence, request_number, status,
                                               reply = std::move(reply)]() mutable {
            self->OnMessageReply(sequence, request_number, status, std::move(reply));
          });
        });
  }
  ReadNext();  // Resumes reading if it was paused on a full inbound queue.
  MaybeSendDisconnect();
}

void Session::OnMessageReply(uint64_t sequence, uint64_t request_number,
                             const grpc::Status& status, v1::MessageResponse reply) {
  --in_flight_;
  if (status.ok()) {
    ApplyActions(*reply.mutable_actions());
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
        net::post(self->ws_.get_executor(), [self] {
          --self->pending_errors_;
          self->MaybeSendDisconnect();
        });
      });
}

void Session::ApplyActions(google::protobuf::RepeatedPtrField<v1::Action>& actions) {
  for (v1::Action& action : actions) {
    if (action.has_send()) {
      v1::Action::Send& send = *action.mutable_send();
      auto message = std::make_shared<OutboundMessage>();
      message->binary = send.payload().has_binary();
      message->data = message->binary ? std::move(*send.mutable_payload()->mutable_binary())
                                      : std::move(*send.mutable_payload()->mutable_text());
      if (send.target().connection_ids().empty()) {
        Enqueue(std::move(message));
        continue;
      }
      // This connection, if named, is served here and now, so that a Close later in the same
      // reply cannot overtake the message.
      ConnectionIds others;
      bool self = false;
      for (std::string& id : *send.mutable_target()->mutable_connection_ids()) {
        if (id == id_) {
          self = true;
        } else {
          others.Add(std::move(id));
        }
      }
      if (self) Enqueue(message);
      if (!others.empty()) {
        SendToConnections(state_.registry(), others, std::move(message), [](FanoutResult) {});
      }
    } else if (action.has_close()) {
      const v1::Action::Close& close = action.close();
      int code = close.code() == 0 ? kCloseNormal : close.code();
      if (!IsSendableCloseCode(code)) {
        FNGATE_LOG(Warning) << "[conn=" << id_ << "] function asked for close code " << code
                            << ", which a server may not send; using 1011";
        code = kCloseInternalError;
      }
      if (close.target().connection_ids().empty()) {
        BeginClose(code, TrimReason(close.reason()), v1::CLOSED_BY_FUNCTION, false);
      } else {
        CloseConnections(state_.registry(), close.target().connection_ids(), code,
                         TrimReason(close.reason()), v1::CLOSED_BY_FUNCTION,
                         [](FanoutResult) {});
      }
    }
  }
}

void Session::OnSocketDone(int code, std::string reason, v1::ClosedBy by) {
  if (socket_done_) return;
  socket_done_ = true;
  if (close_timer_) close_timer_->cancel();
  state_.registry().Remove(id_);
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
  // A write may still be running (a client that half-closed while we wrote): stop it.
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
  FNGATE_LOG(Debug) << "[conn=" << id_ << "] closed " << code << " by "
                    << v1::ClosedBy_Name(by);
  PumpMessages();  // What was read still goes out, then the disconnect event.
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
      std::move(event), [self = shared_from_this()](const grpc::Status& status,
                                                    v1::DisconnectResponse&) {
        if (!status.ok()) {
          FNGATE_LOG(Warning) << "[conn=" << self->id_ << "] disconnect event not delivered: "
                              << status.error_code() << " " << status.error_message();
        }
        // live_ is only read on the strand before disconnect_sent_; this is the last use.
        self->state_.RemoveLive();
      });
}

// ---------------------------------------------------------------------------------------------
// Writing

void Session::Send(OutboundMessagePtr message, absl::AnyInvocable<void(SendOutcome)> done) {
  net::post(ws_.get_executor(), [self = shared_from_this(), message = std::move(message),
                                 done = std::move(done)]() mutable {
    done(self->Enqueue(std::move(message)));
  });
}

void Session::Close(int code, std::string reason, v1::ClosedBy by, bool urgent,
                    absl::AnyInvocable<void(bool)> done) {
  net::post(ws_.get_executor(), [self = shared_from_this(), code, reason = std::move(reason), by,
                                 urgent, done = std::move(done)]() mutable {
    done(self->BeginClose(code, std::move(reason), by, urgent));
  });
}

void Session::Describe(absl::AnyInvocable<void(v1::ConnectionInfo)> done) {
  net::post(ws_.get_executor(), [self = shared_from_this(), done = std::move(done)]() mutable {
    v1::ConnectionInfo info;
    *info.mutable_connection() = self->context_;
    SetTimestamp(self->last_activity_, *info.mutable_last_activity());
    info.set_messages_in(self->messages_in_);
    info.set_messages_out(self->messages_out_);
    info.set_bytes_in(self->bytes_in_);
    info.set_bytes_out(self->bytes_out_);
    info.set_user_agent(self->user_agent_);
    done(std::move(info));
  });
}

SendOutcome Session::Enqueue(OutboundMessagePtr message) {
  if (!(open_ || accepting_) || close_started_) return SendOutcome::kGone;
  const uint64_t size = QueuedCost(message->data.size());
  if (outbound_bytes_ + size > state_.settings().limits.max_outbound_bytes) {
    // A reader this slow would cost unbounded memory: it is closed, and the sender told.
    state_.metrics().slow_consumer_drops.fetch_add(1, std::memory_order_relaxed);
    FNGATE_LOG(Info) << "[conn=" << id_ << "] slow consumer: " << outbound_bytes_
                     << " bytes queued; closing";
    BeginClose(kClosePolicy, "slow consumer", v1::CLOSED_BY_LIMIT, /*urgent=*/true);
    return SendOutcome::kOverflow;
  }
  outbound_bytes_ += size;
  outbound_.push_back(Outbound{std::move(message)});
  if (open_ && outbound_.size() == 1) WriteNext();  // Else OnAccept() or OnWrite() goes on.
  return SendOutcome::kQueued;
}

bool Session::BeginClose(int code, std::string reason, v1::ClosedBy by, bool urgent) {
  if (!(open_ || accepting_) || close_started_) return false;
  close_started_ = true;
  close_code_ = code;
  close_reason_ = std::move(reason);
  closed_by_ = by;
  if (urgent && open_ && !outbound_.empty()) {
    // Keep the message being written (a frame cannot be cut), drop the rest.
    outbound_.truncate_after_front();
    outbound_bytes_ = QueuedCost(outbound_.front().message->data.size());
  } else if (urgent) {
    outbound_.clear();  // Still in the handshake: nothing is being written yet.
    outbound_bytes_ = 0;
  }
  outbound_.push_back(Outbound{nullptr});
  if (open_ && outbound_.size() == 1) WriteNext();
  // The close handshake has its own timeout, but a write stuck behind a client that reads
  // nothing does not: this bounds the whole goodbye. When draining, it also leaves half the
  // grace period to deliver the disconnect event of a client that never answers.
  std::chrono::milliseconds goodbye = state_.settings().limits.handshake_timeout;
  if (by == v1::CLOSED_BY_SHUTDOWN) goodbye = std::min(goodbye, state_.settings().drain_grace / 2);
  close_timer_ = std::make_unique<net::steady_timer>(ws_.get_executor());
  close_timer_->expires_after(goodbye);
  close_timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec && !self->socket_done_) beast::get_lowest_layer(self->ws_).close();
  });
  return true;
}

void Session::WriteNext() {
  const Outbound& next = outbound_.front();
  if (next.message == nullptr) {
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(close_code_),
                                            close_reason_),
                    beast::bind_front_handler(&Session::OnCloseSent, shared_from_this()));
    return;
  }
  ws_.binary(next.message->binary);  // Safe: at most one write is in flight.
  // The handler holds the message too: the queue may be cleared (connection over) while Beast
  // is still writing from it.
  ws_.async_write(net::buffer(next.message->data),
                  [self = shared_from_this(), message = next.message](beast::error_code ec,
                                                                      size_t bytes) {
                    self->OnWrite(ec, bytes);
                  });
}

void Session::OnWrite(beast::error_code ec, size_t /*bytes*/) {
  if (outbound_.empty()) return;  // The connection ended meanwhile and dropped its queue.
  if (ec) {
    outbound_.clear();
    outbound_bytes_ = 0;
    // The read side reports how the connection ended; if it is paused, report here.
    if (!reading_) OnSocketDone(kCloseAbnormal, "", v1::CLOSED_BY_NETWORK);
    return;
  }
  const uint64_t size = outbound_.front().message->data.size();
  outbound_bytes_ -= QueuedCost(size);
  outbound_.pop_front();
  ++messages_out_;
  bytes_out_ += size;
  metrics().messages_out.fetch_add(1, std::memory_order_relaxed);
  metrics().bytes_out.fetch_add(size, std::memory_order_relaxed);
  if (!outbound_.empty()) WriteNext();
}

void Session::OnCloseSent(beast::error_code ec) {
  outbound_.clear();
  outbound_bytes_ = 0;
  // Normally the pending read completes with `closed` and reports; when reading was paused,
  // nothing else will.
  if (!reading_) OnSocketDone(close_code_, close_reason_, closed_by_);
}

}  // namespace fngate::gateway
