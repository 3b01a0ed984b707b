// File: gateway/client_limits.h
// Connection-count limits shared by every session: ConnectionCounter counts the connections
// held at once, in total and per client address, against Limits.max_connections and
// max_connections_per_ip; ConnectionSlots is what one session holds against the counters and
// gives back exactly once.
//
//   ConnectionSlots slots;  // a Session member
//   if (slots.Take(counter, AddressKeyOf(peer)) != Admission::kAdmitted) -> HTTP 503 / 429
//   ...
//   slots.Release();  // when the socket goes; the destructor does it otherwise
//
// The gateway-wide total is GatewayState::TryAddSocket (taken at accept, handshakes
// included); the gateway's counter here has only the per-address limit. A function whose
// limits differ from the gateway's has a counter of its own, taken once the path names it.
#pragma once

#include <array>
#include <cstdint>

#include <boost/asio/ip/address.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace fngate::gateway {

// A client address as 16 bytes (IPv4 as IPv4-mapped IPv6), so both families share one map.
using AddressKey = std::array<uint8_t, 16>;
AddressKey AddressKeyOf(const boost::asio::ip::address& address);

enum class Admission { kAdmitted, kTooMany, kTooManyFromAddress };

// Thread-safe. A limit of 0 is no limit, and costs nothing (no lock, no map entry).
class ConnectionCounter {
 public:
  ConnectionCounter(uint32_t max_total, uint32_t max_per_address)
      : max_total_(max_total), max_per_address_(max_per_address) {}
  ConnectionCounter(const ConnectionCounter&) = delete;
  ConnectionCounter& operator=(const ConnectionCounter&) = delete;

  // Counts a connection from `address` in, or nothing when a limit is reached.
  Admission TryAdd(const AddressKey& address) ABSL_LOCKS_EXCLUDED(mu_);
  // Gives back what an admitted TryAdd counted. Call once per admitted TryAdd.
  void Remove(const AddressKey& address) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const uint32_t max_total_;
  const uint32_t max_per_address_;
  absl::Mutex mu_;
  uint32_t total_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<AddressKey, uint32_t> per_address_ ABSL_GUARDED_BY(mu_);
};

// What one connection holds against up to two counters (the gateway's and its function's).
// Not thread-safe: the session's strand owns it.
class ConnectionSlots {
 public:
  ConnectionSlots() = default;
  ~ConnectionSlots() { Release(); }
  ConnectionSlots(const ConnectionSlots&) = delete;
  ConnectionSlots& operator=(const ConnectionSlots&) = delete;

  // Takes a slot of `counter` for `address` (at most two counters per connection, all for
  // the same address). Holds nothing new unless admitted.
  Admission Take(ConnectionCounter& counter, const AddressKey& address);
  // Gives every slot back; later calls do nothing.
  void Release();

 private:
  AddressKey address_{};
  ConnectionCounter* held_[2] = {nullptr, nullptr};
};

}  // namespace fngate::gateway
