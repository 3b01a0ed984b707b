// File: runtime/src/convert.h
// Runtime values -> fngate.v1 protos, shared by the reply contexts and the gateway client.
// Stateless; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "fngate/runtime/gateway_client.h"
#include "fngate/runtime/payload.h"
#include "fngate/v1/events.pb.h"

namespace fngate::runtime {

// RFC 6455 section 5.5: a close frame's body is at most 125 bytes, 2 of them the code.
inline constexpr size_t kMaxCloseReasonBytes = 123;

// Appends `to`'s selectors and narrowing to `target` (a fresh target gets exactly `to`).
void ToProto(const To& to, v1::Target& target);
void ToProto(Payload&& payload, v1::Payload& proto);
void ToProto(const IdentityChange& change, v1::Identity& identity);

// `reason` cut to kMaxCloseReasonBytes, never inside a UTF-8 character.
std::string TruncateCloseReason(std::string_view reason);

}  // namespace fngate::runtime
