// File: gateway/identity.h
// Changes to a connection's identity (user id, app id, channel, device id, metadata) and
// groups, as connect replies, reply actions and control calls make them. Each returns
// whether it changed anything. Groups are kept sorted and distinct.
#pragma once

#include <google/protobuf/repeated_ptr_field.h>

#include "fngate/v1/events.pb.h"

namespace fngate::gateway {

using Strings = google::protobuf::RepeatedPtrField<std::string>;

bool JoinGroups(const Strings& groups, v1::ConnectionContext& context);
bool LeaveGroups(const Strings& groups, v1::ConnectionContext& context);
bool ApplyIdentity(const v1::Identity& identity, v1::ConnectionContext& context);

// Copies the fields the functions above change from `from` to `to`.
void CopyIdentity(const v1::ConnectionContext& from, v1::ConnectionContext& to);

}  // namespace fngate::gateway
