#include "runtime/src/function_service.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/status_util.h"

namespace fngate::runtime {
namespace {

// One `EVENT ...` line on stderr in a single write(2), so that tests reading the log see whole
// lines even while other threads log. Deliberately not common/log.h: the format is a contract
// (no timestamp prefix).
void WriteEventLine(std::string line) {
  line += '\n';
  ssize_t written;
  do {
    written = ::write(STDERR_FILENO, line.data(), line.size());
  } while (written < 0 && errno == EINTR);
}

// The handler's status as the call's status. A non-OK status is for the gateway to handle (it
// fires OnError and logs); here it is only worth a debug line.
grpc::Status Finish(std::string_view handler, const Context& ctx, const absl::Status& status) {
  if (!status.ok()) {
    FNGATE_LOG(Debug) << "[conn=" << ctx.connection_id() << "] " << handler << " returned "
                      << status;
  }
  return ToGrpcStatus(status);
}

}  // namespace

FunctionServiceImpl::FunctionServiceImpl(Function& function, bool log_events,
                                         std::string default_gateway)
    : function_(function), log_events_(log_events), default_gateway_(std::move(default_gateway)) {}

CallInfo FunctionServiceImpl::MakeCallInfo(const grpc::ServerContext& context) const {
  CallInfo call;
  const std::chrono::system_clock::time_point deadline = context.deadline();
  call.deadline = deadline == std::chrono::system_clock::time_point::max()
                      ? absl::InfiniteFuture()
                      : absl::FromChrono(deadline);
  call.default_gateway = default_gateway_;
  return call;
}

grpc::Status FunctionServiceImpl::OnConnect(grpc::ServerContext* context,
                                            const v1::ConnectEvent* event,
                                            v1::ConnectResponse* response) {
  if (log_events_) {
    WriteEventLine(absl::StrCat("EVENT kind=connect conn=", event->connection().connection_id(),
                                " request=", event->request_id()));
  }
  ConnectContext ctx(*event, *response, MakeCallInfo(*context));
  return Finish("OnConnect", ctx, function_.OnConnect(ctx));
}

grpc::Status FunctionServiceImpl::OnMessage(grpc::ServerContext* context,
                                            const v1::MessageEvent* event,
                                            v1::MessageResponse* response) {
  if (log_events_) {
    WriteEventLine(absl::StrCat("EVENT kind=message conn=", event->connection().connection_id(),
                                " request=", event->request_id(), " seq=", event->sequence()));
  }
  MessageContext ctx(*event, *response, MakeCallInfo(*context));
  return Finish("OnMessage", ctx, function_.OnMessage(ctx));
}

grpc::Status FunctionServiceImpl::OnDisconnect(grpc::ServerContext* context,
                                               const v1::DisconnectEvent* event,
                                               v1::DisconnectResponse* /*response*/) {
  if (log_events_) {
    const std::string_view by = ClosedByName(event->closed_by());
    WriteEventLine(absl::StrCat("EVENT kind=disconnect conn=", event->connection().connection_id(),
                                " request=", event->request_id(), " code=", event->close_code(),
                                " by=", absl::string_view(by.data(), by.size())));
  }
  DisconnectContext ctx(*event, MakeCallInfo(*context));
  return Finish("OnDisconnect", ctx, function_.OnDisconnect(ctx));
}

grpc::Status FunctionServiceImpl::OnError(grpc::ServerContext* context, const v1::ErrorEvent* event,
                                          v1::ErrorResponse* /*response*/) {
  if (log_events_) {
    const std::string_view failed = EventKindName(event->failed_event());
    WriteEventLine(absl::StrCat("EVENT kind=error conn=", event->connection().connection_id(),
                                " request=", event->request_id(),
                                " failed=", absl::string_view(failed.data(), failed.size()),
                                " code=", event->code()));
  }
  ErrorContext ctx(*event, MakeCallInfo(*context));
  function_.OnError(ctx);
  return grpc::Status::OK;
}

grpc::Status FunctionServiceImpl::Events(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ReplyBatch, v1::EventBatch>* stream) {
  // Events of one connection always travel on one stream, in order; handling a batch in order
  // keeps them so. A handler that blocks holds up only this stream: the gateway opens several.
  v1::EventBatch batch;
  v1::ReplyBatch replies;
  while (stream->Read(&batch)) {
    replies.Clear();
    const int64_t now_micros = absl::ToUnixMicros(absl::Now());
    for (v1::StreamEvent& event : *batch.mutable_events()) {
      v1::StreamReply* reply = replies.add_replies();
      reply->set_call_id(event.call_id());
      if (event.deadline_unix_micros() != 0 && event.deadline_unix_micros() < now_micros) {
        // The gateway has given up on it already; running it would only add load.
        reply->set_status_code(static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED));
        reply->set_status_message("deadline passed before the worker got to the event");
        continue;
      }
      grpc::Status status;
      switch (event.event_case()) {
        case v1::StreamEvent::kConnect:
          status = OnConnect(context, &event.connect(), reply->mutable_connect());
          break;
        case v1::StreamEvent::kMessage:
          status = OnMessage(context, &event.message(), reply->mutable_message());
          break;
        case v1::StreamEvent::kDisconnect: {
          v1::DisconnectResponse unused;
          status = OnDisconnect(context, &event.disconnect(), &unused);
          break;
        }
        case v1::StreamEvent::kError: {
          v1::ErrorResponse unused;
          status = OnError(context, &event.error(), &unused);
          break;
        }
        case v1::StreamEvent::EVENT_NOT_SET:
          status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty stream event");
          break;
      }
      if (!status.ok()) {
        reply->clear_reply();  // As a failed unary call: a status, no message.
        reply->set_status_code(static_cast<int>(status.error_code()));
        reply->set_status_message(status.error_message());
      }
    }
    if (!stream->Write(replies)) break;
  }
  return grpc::Status::OK;
}

}  // namespace fngate::runtime
