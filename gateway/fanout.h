// File: gateway/fanout.h
// Sending to, or closing, many connections by id, for reply actions and control calls. The
// message is built once by the caller and shared by every recipient's queue.
//
// Never blocks: each recipient is reached on its own strand, and `done` runs once, on the
// thread of the last recipient to answer (or at once when there is none).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <google/protobuf/repeated_ptr_field.h>

#include "absl/functional/any_invocable.h"
#include "fngate/v1/events.pb.h"
#include "gateway/connection_registry.h"
#include "gateway/outbound.h"

namespace fngate::gateway {

struct FanoutResult {
  int32_t reached = 0;
  std::vector<std::string> gone;        // Unknown, closing or closed.
  std::vector<std::string> overflowed;  // Outbound queue full.
};

using ConnectionIds = google::protobuf::RepeatedPtrField<std::string>;

// Repeated ids count once.
void SendToConnections(ConnectionRegistry& registry, const ConnectionIds& ids,
                       OutboundMessagePtr message, absl::AnyInvocable<void(FanoutResult)> done);

void CloseConnections(ConnectionRegistry& registry, const ConnectionIds& ids, int code,
                      const std::string& reason, v1::ClosedBy by,
                      absl::AnyInvocable<void(FanoutResult)> done);

}  // namespace fngate::gateway
