// File: gateway/client_address.h
// IP addresses and networks as the config names them, and the client address an event
// carries.
//
//   std::optional<IpAddress> ip = ParseIpAddress("::ffff:10.1.2.3");  // IPv4 10.1.2.3
//   absl::StatusOr<IpNetwork> net = ParseIpNetwork("10.0.0.0/8");       // or "fd00::/8", "::1"
//   net->Contains(*ip);                                                 // true
//
// IPv4-mapped IPv6 addresses (what a dual-stack socket reports for an IPv4 peer) are IPv4
// here, so "10.0.0.0/8" matches them too. Pure functions: thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace fngate::gateway {

struct IpAddress {
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first 4.
  bool v4 = false;
};

// A literal IPv4 or IPv6 address, without brackets or port; nullopt otherwise.
std::optional<IpAddress> ParseIpAddress(std::string_view text);

// 127.0.0.0/8 or ::1.
bool IsLoopback(const IpAddress& address);

struct IpNetwork {
  IpAddress base;
  int prefix_bits = 0;  // 0-32 (IPv4) or 0-128 (IPv6).

  bool Contains(const IpAddress& address) const;
};

// "10.0.0.0/8", "2001:db8::/32", or a single address ("127.0.0.1", "::1"). Bits set below
// the prefix are an error ("10.0.0.1/8"), as they are a typo more often than not.
absl::StatusOr<IpNetwork> ParseIpNetwork(std::string_view text);

}  // namespace fngate::gateway
