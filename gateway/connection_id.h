// File: gateway/connection_id.h
// Connection ids: 88 random bits from OpenSSL's DRBG, base64url (15 characters). Unguessable,
// because a connection id is all the control API needs to push to a connection; 15 characters
// fit std::string's inline buffer, so the session and the online table key allocate nothing.
#pragma once

#include <string>

namespace fngate::gateway {

// Thread-safe.
std::string NewConnectionId();

}  // namespace fngate::gateway
