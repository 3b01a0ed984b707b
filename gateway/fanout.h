// File: gateway/fanout.h
// Sending to, closing, or emitting an event to the connections a Target resolved to, for
// reply actions and control calls. The message is built once by the caller and shared by
// every recipient's queue.
//
// Never blocks: each recipient is reached on its own strand, and `done` runs once, on the
// thread of the last recipient to answer (or at once when there is none).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "fngate/v1/events.pb.h"
#include "gateway/online_table.h"
#include "gateway/outbound.h"

namespace fngate::gateway {

struct FanoutResult {
  int32_t reached = 0;
  std::vector<std::string> gone;        // Named ids: unknown, closing or closed.
  std::vector<std::string> overflowed;  // Outbound queue full.
};

using FanoutDone = absl::AnyInvocable<void(FanoutResult)>;

// What to close with after a message (Emit with close), or alone.
struct CloseOrder {
  int code = kCloseNormal;
  std::string reason;
  v1::ClosedBy by = v1::CLOSED_BY_CONTROL;
};

// Queues `message` to every recipient; with `then_close`, closes each after it.
void SendToTargets(ResolvedTarget targets, OutboundMessagePtr message,
                   std::shared_ptr<const CloseOrder> then_close, FanoutDone done);

void CloseTargets(ResolvedTarget targets, std::shared_ptr<const CloseOrder> order,
                  FanoutDone done);

}  // namespace fngate::gateway
