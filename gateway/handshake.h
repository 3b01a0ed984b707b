// File: gateway/handshake.h
// What the gateway reads from a client's HTTP upgrade request besides its target (url.h): the
// bound on its header, and the subprotocols it offers. Shared by Session and the handshake
// fuzz target (tests/fuzz/handshake_fuzz.cc), so both read requests the same way.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fngate::gateway {

// Largest upgrade request header (request line and fields) the gateway reads; a longer one
// fails the read (Beast's header_limit) and the connection is dropped.
inline constexpr uint32_t kMaxRequestHeaderBytes = 16 * 1024;

// Sec-WebSocket-Protocol "a, b ,c" -> {"a", "b", "c"}, in order; empty items are skipped.
std::vector<std::string> SplitSubprotocols(std::string_view header);

}  // namespace fngate::gateway
