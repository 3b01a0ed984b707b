// File: gateway/session.h
// Session: one client connection, from the first byte of its HTTP upgrade request to its
// disconnect event.
//
// Life of a connection:
//   ReadRequest -> route by path (404) -> connect event to the function -> its reply rejects
//   (the function's HTTP status) or accepts: WebSocket handshake, online table entry, read loop.
//   Each message read becomes a message event, in arrival order, at most max_in_flight at a
//   time; up to max_inbound_queue more wait, then reading pauses (TCP backpressure).
//   Reply actions and control calls queue messages and close frames on one bounded outbound
//   queue, written in order. When the socket is done, the events already read still go out,
//   then the disconnect event, exactly once, last.
//
// Threading: every data member is touched only on the session's strand (the executor of its
// socket). Public methods may be called from any thread; they post to the strand and report
// there. Lifetime: Asio's rule, the session lives as long as work it started is pending
// (each handler holds a shared_ptr); the online table holds weak_ptrs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "absl/functional/any_invocable.h"
#include "fngate/v1/control.pb.h"
#include "fngate/v1/function.pb.h"
#include "gateway/client_limits.h"
#include "gateway/client_stream.h"
#include "gateway/gateway_state.h"
#include "gateway/online_table.h"
#include "gateway/outbound.h"
#include "gateway/rate_limiter.h"
#include "gateway/small_queue.h"
#include "gateway/ws_codec.h"

namespace fngate::gateway {

struct CloseOrder;

class Session : public std::enable_shared_from_this<Session> {
 public:
  // The caller has taken a socket slot (GatewayState::TryAddSocket); the session gives it back.
  Session(boost::asio::ip::tcp::socket&& socket, GatewayState& state);
  ~Session();

  // Starts the TLS handshake (wss://) or reading the upgrade request. Call once, right after
  // construction.
  void Start();

  // Queues `message` after what is already queued, then (if given) closes. Any thread; `done`
  // runs on the strand.
  void Send(OutboundMessagePtr message, std::shared_ptr<const CloseOrder> then_close,
            absl::AnyInvocable<void(SendOutcome)> done);

  // Closes after what is queued (urgent: drops what is queued first). `done(true)` if this
  // call started the close, false if the connection was already closing or gone.
  void Close(int code, std::string reason, v1::ClosedBy by, bool urgent,
             absl::AnyInvocable<void(bool)> done);

  // The gateway is draining: closes with 1001 once the messages already read have had their
  // replies (and an envelope client its acks), reading nothing more meanwhile; after a quarter
  // of the drain grace at the latest. Any thread.
  void Drain();

  // The online table changed this connection's identity or groups: later events carry the
  // newest. Any thread.
  void RefreshIdentity();

  // Keepalive, every idle_timeout / 2 of the connection's function (the gateway ticks every
  // open connection; one timer per function, none per connection): a ping when nothing was
  // heard since the last tick, and when even that went unanswered by the next, the connection
  // is dropped (1006, TIMEOUT). Any thread.
  void KeepaliveTick();

  // Last activity and message counters, for the online table. Any thread.
  void FillStats(v1::ConnectionInfo& info) const;

  const std::string& id() const { return id_; }

 private:
  struct Inbound {
    std::string data;
    OutboundMessage::Kind kind = OutboundMessage::Kind::kText;  // Text, binary or JSON.
    uint64_t sequence = 0;
    std::string ack_id;  // Envelope clients: the ack id to answer, as JSON; empty for none.
  };
  struct Outbound {
    OutboundMessagePtr message;  // Null for the close frame.
  };
  struct Handshake;   // Until the 101 is written: the request and what the connect reply set.
  struct WriteBatch;  // Frames on their way to the socket in one write.

  // Handshake.
  void ReadRequest();
  void OnRequest(boost::system::error_code ec, size_t bytes);
  // Checks the upgrade request the way RFC 6455 section 4.2.1 asks; false when answered.
  bool CheckWebSocketRequest();
  void OnConnectReply(const std::string& request_id, const grpc::Status& status,
                      v1::ConnectResponse reply);
  void OnAccept(boost::system::error_code ec);
  void RespondHttp(int status, std::string body, bool version_header = false);
  void ArmHandshakeTimer();
  void AbandonHandshake();
  std::string ClientAddressOf(const boost::asio::ip::tcp::endpoint& peer) const;

  // Reading and events.
  void ReadNext();
  void OnReadable(boost::system::error_code ec);
  void OnTlsRead(boost::system::error_code ec, size_t bytes);
  void OnReadError(boost::system::error_code ec);
  // Frames what arrived (after what `pending_` holds) into messages and control frames.
  void Consume(const uint8_t* data, size_t size);
  bool ReadPaused() const;
  void OnMessage(std::string data, bool binary);
  void OnClientClose(int code, std::string reason);
  void OnProtocolError(int code, std::string_view reason);
  void PumpMessages();
  void OnMessageReply(uint64_t sequence, uint64_t request_number, const std::string& ack_id,
                      const grpc::Status& status, v1::MessageResponse reply);
  // Envelope clients: a text frame that is not a message for the function (ping, bad frame)
  // is answered here. Returns false when `message` should go on to the function.
  bool AnswerEnvelopeFrame(Inbound& message);
  void EnqueueText(std::string text);
  void FireError(v1::EventKind failed, const std::string& failed_request_id,
                 const grpc::Status& status, uint64_t sequence);
  void ApplyActions(google::protobuf::RepeatedPtrField<v1::Action>& actions);
  // Takes this connection out of `targets` when it is there (it is served in place, in order).
  bool TakeSelf(ResolvedTarget& targets) const;
  bool AdmitMessage();
  // The connection is over: reports once, closes the socket, then the disconnect event.
  void OnSocketDone(int code, std::string reason, v1::ClosedBy by);
  // The close handshake is done (or failed): TLS close_notify, then OnSocketDone.
  void Teardown();
  void MaybeSendDisconnect();

  // Writing.
  SendOutcome Enqueue(OutboundMessagePtr message);
  bool DropOldest(uint64_t size);
  bool BeginClose(int code, std::string reason, v1::ClosedBy by, bool urgent);
  void StartDrain();
  void WriteNext();
  void OnWrite(std::unique_ptr<WriteBatch> batch, boost::system::error_code ec);
  void CountWritten(const WriteBatch& batch);

  // Helpers.
  template <typename Event>
  Event NewEvent();
  std::string NextRequestId();
  FunctionMetrics& metrics();
  // The function's limits once routed, the gateway's before.
  const LimitSettings& limits() const;
  void CountLimit(LimitKind kind);
  void StartLifetimeTimer();

  ClientStream stream_;  // ws:// or wss://: see client_stream.h.
  GatewayState& state_;
  const std::string id_;
  int function_ = -1;  // Index in state_, once routed.

  std::unique_ptr<Handshake> hs_;  // Released once the connection is open.

  // What every event carries: the online table's row, shared (it replaces the pointer when
  // identity or groups change, and RefreshIdentity picks the new one up).
  std::shared_ptr<const v1::ConnectionContext> context_;

  // Reading: the WebSocket frames (once open), and bytes not framed yet -- an incomplete
  // frame header, or the rest of a read while reading is paused (backpressure).
  std::optional<ws::FrameReader> reader_;
  std::unique_ptr<std::string> pending_;  // Made on first use.
  SmallQueue<Inbound> inbound_;
  uint32_t in_flight_ = 0;        // Message events awaiting their reply.
  uint32_t pending_errors_ = 0;   // Error events awaiting their reply.
  uint64_t next_sequence_ = 1;
  uint64_t request_counter_ = 0;

  // Writing: whole frames, in order; a batch of them is with the socket (writing_).
  SmallQueue<Outbound> outbound_;
  uint64_t outbound_bytes_ = 0;   // Queued, as QueuedCost.
  uint64_t writing_bytes_ = 0;    // With the socket, as QueuedCost.
  std::unique_ptr<std::string> pong_;  // The latest ping's payload: a pong is due.
  std::unique_ptr<boost::asio::steady_timer> close_timer_;

  // Limits: the connection's slots in the connection counters; the message rate and the
  // lifetime, when configured.
  ConnectionSlots slots_;
  std::unique_ptr<TokenBucket> rate_;
  std::unique_ptr<boost::asio::steady_timer> lifetime_timer_;

  // Lifecycle. Bit-fields: an idle connection pays for every byte here.
  bool accepting_ : 1 = false;          // The function accepted; the 101 is being written.
  bool open_ : 1 = false;               // Handshake done, socket not done.
  bool live_ : 1 = false;               // Counted in GatewayState::live(): owes a disconnect.
  bool reading_ : 1 = false;            // A read (or readiness wait) is with the socket.
  bool consuming_ : 1 = false;          // Consume() is framing input: ReadNext() waits.
  bool paused_with_input_ : 1 = false;  // pending_ holds input not framed yet (paused).
  bool writing_ : 1 = false;            // A batch is with the socket.
  bool close_started_ : 1 = false;      // A close frame is queued or sent by us.
  bool close_sent_ : 1 = false;         // Ours is written: only the client's close is read.
  bool close_received_ : 1 = false;     // The client's close frame came.
  bool failing_ : 1 = false;            // A protocol error: our close goes, nothing is read.
  bool ping_due_ : 1 = false;           // A keepalive ping to write.
  bool heard_ : 1 = false;              // Bytes arrived since the last keepalive tick.
  bool pinged_ : 1 = false;             // A keepalive ping went out; nothing heard since.
  bool deflate_ : 1 = false;            // permessage-deflate was negotiated.
  bool drain_pending_ : 1 = false;      // Draining: 1001 once in-flight messages are done.
  bool socket_done_ : 1 = false;        // The connection is over.
  bool drop_inbound_ : 1 = false;       // Closed after a failed event: drop the rest.
  bool envelope_ : 1 = false;           // Speaks fngate.v1: JSON frames, acks (SPEC 1).
  bool disconnect_sent_ : 1 = false;
  int close_code_ = kCloseAbnormal;
  std::string close_reason_;
  v1::ClosedBy closed_by_ = v1::CLOSED_BY_UNSPECIFIED;

  // Online table counters: written on the strand only, read by control calls on any thread.
  // One writer, so a relaxed load and store is enough (no locked read-modify-write).
  struct Counter {
    std::atomic<uint64_t> value{0};
    void Add(uint64_t n) { value.store(value.load(std::memory_order_relaxed) + n,
                                       std::memory_order_relaxed); }
    uint64_t Get() const { return value.load(std::memory_order_relaxed); }
  };
  std::atomic<int64_t> last_activity_us_{0};  // Unix microseconds.
  Counter messages_in_, messages_out_, bytes_in_, bytes_out_;
};

}  // namespace fngate::gateway
