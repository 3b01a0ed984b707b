// File: gateway/connection_id.h
// Connection ids: 96 random bits from OpenSSL's DRBG, base64url (16 characters). Unguessable,
// because a connection id is all the control API needs to push to a connection.
#pragma once

#include <string>

namespace fngate::gateway {

// Thread-safe.
std::string NewConnectionId();

}  // namespace fngate::gateway
