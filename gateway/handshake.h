// File: gateway/handshake.h
// What the gateway reads from a client's HTTP upgrade request besides its target (url.h): the
// subprotocols it offers. Shared by Session and the handshake fuzz target
// (tests/fuzz/handshake_fuzz.cc), so both read requests the same way. The bound on the
// request header is a setting (LimitSettings::max_header_bytes, config.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fngate::gateway {

// Sec-WebSocket-Protocol "a, b ,c" -> {"a", "b", "c"}, in order; empty items are skipped.
std::vector<std::string> SplitSubprotocols(std::string_view header);

}  // namespace fngate::gateway
