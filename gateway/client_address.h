// File: gateway/client_address.h
// IP addresses and networks as the config names them, and the client address an event
// carries when the gateway sits behind proxies.
//
//   std::optional<IpAddress> ip = ParseIpAddress("::ffff:10.1.2.3");  // IPv4 10.1.2.3
//   absl::StatusOr<IpNetwork> net = ParseIpNetwork("10.0.0.0/8");       // or "fd00::/8", "::1"
//   net->Contains(*ip);                                                 // true
//
//   // Peer 10.0.0.7 (a trusted proxy) sent "X-Forwarded-For: 6.6.6.6, 203.0.113.9, 10.0.0.5":
//   ForwardedClient("10.0.0.7", "6.6.6.6, 203.0.113.9, 10.0.0.5", {*net});  // "203.0.113.9"
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

// "10.1.2.3", "2001:db8::1".
std::string ToString(const IpAddress& address);

// The client's address according to X-Forwarded-For, believed only as far as `trusted` proxies
// vouch for it. `peer_ip` is the socket's peer; `forwarded_for` every X-Forwarded-For header
// value, joined with commas in order. When the peer is trusted: the right-most address of the
// list that is not a trusted proxy (what the nearest untrusted hop told a proxy we trust;
// anything left of it may be forged), or the left-most if all are trusted. An entry that is
// not an address ("unknown") ends the walk: the trusted hop after it is returned. nullopt when
// the peer is not trusted or the list holds nothing usable: the peer is the client.
// Entries may carry a port ("1.2.3.4:80", "[2001:db8::1]:80"); the result has none.
std::optional<std::string> ForwardedClient(std::string_view peer_ip,
                                           std::string_view forwarded_for,
                                           const std::vector<IpNetwork>& trusted);

}  // namespace fngate::gateway
