// File: gateway/identity.h
// Changes to a connection's identity (user id, app id, channel, device id, metadata) and
// groups, as connect replies, reply actions and control calls make them. Each returns
// whether it changed anything. Groups are kept sorted and distinct.
#pragma once

#include <google/protobuf/repeated_ptr_field.h>

#include "absl/status/status.h"
#include "fngate/v1/events.pb.h"

namespace fngate::gateway {

using Strings = google::protobuf::RepeatedPtrField<std::string>;

bool JoinGroups(const Strings& groups, v1::ConnectionContext& context);
bool LeaveGroups(const Strings& groups, v1::ConnectionContext& context);
bool ApplyIdentity(const v1::Identity& identity, v1::ConnectionContext& context);

// Bounds on what a change may set, the same from a control call and a function's reply:
// something to change, identity fields of at most 256 bytes, at most 64 metadata entries with
// 1-256 byte keys and values of at most 4096 bytes. INVALID_ARGUMENT names the field
// ("identity.user_id: at most 256 bytes").
absl::Status ValidateIdentity(const v1::Identity& identity);

}  // namespace fngate::gateway
