#include "gateway/client_limits.h"

#include <cassert>

namespace fngate::gateway {

AddressKey AddressKeyOf(const boost::asio::ip::address& address) {
  if (address.is_v4()) {
    return boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, address.to_v4())
        .to_bytes();
  }
  return address.to_v6().to_bytes();
}

Admission ConnectionCounter::TryAdd(const AddressKey& address) {
  if (max_total_ == 0 && max_per_address_ == 0) return Admission::kAdmitted;
  absl::MutexLock lock(&mu_);
  if (max_total_ != 0 && total_ >= max_total_) return Admission::kTooMany;
  if (max_per_address_ != 0) {
    uint32_t& n = per_address_[address];
    if (n >= max_per_address_) return Admission::kTooManyFromAddress;
    ++n;
  }
  ++total_;
  return Admission::kAdmitted;
}

void ConnectionCounter::Remove(const AddressKey& address) {
  if (max_total_ == 0 && max_per_address_ == 0) return;
  absl::MutexLock lock(&mu_);
  --total_;
  if (max_per_address_ != 0) {
    auto it = per_address_.find(address);
    assert(it != per_address_.end() && it->second > 0);
    if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
  }
}

Admission ConnectionSlots::Take(ConnectionCounter& counter, const AddressKey& address) {
  const int free_slot = held_[0] == nullptr ? 0 : 1;
  assert(held_[free_slot] == nullptr);
  assert(free_slot == 0 || address_ == address);
  const Admission admission = counter.TryAdd(address);
  if (admission == Admission::kAdmitted) {
    address_ = address;
    held_[free_slot] = &counter;
  }
  return admission;
}

void ConnectionSlots::Release() {
  for (ConnectionCounter*& counter : held_) {
    if (counter != nullptr) counter->Remove(address_);
    counter = nullptr;
  }
}

}  // namespace fngate::gateway
