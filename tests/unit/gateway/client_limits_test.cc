// ConnectionCounter and ConnectionSlots: limits in total and per address, each slot given
// back exactly once.
#include "gateway/client_limits.h"

#include <gtest/gtest.h>

namespace fngate::gateway {
namespace {

namespace ip = boost::asio::ip;

const AddressKey kA = AddressKeyOf(ip::make_address("10.0.0.1"));
const AddressKey kB = AddressKeyOf(ip::make_address("10.0.0.2"));

TEST(ClientLimitsTest, Ipv4AndItsMappedIpv6AreOneAddress) {
  EXPECT_EQ(AddressKeyOf(ip::make_address("10.0.0.1")),
            AddressKeyOf(ip::make_address("::ffff:10.0.0.1")));
  EXPECT_NE(AddressKeyOf(ip::make_address("10.0.0.1")), AddressKeyOf(ip::make_address("::1")));
}

TEST(ClientLimitsTest, PerAddressLimit) {
  ConnectionCounter counter(/*max_total=*/0, /*max_per_address=*/2);
  EXPECT_EQ(counter.TryAdd(kA), Admission::kAdmitted);
  EXPECT_EQ(counter.TryAdd(kA), Admission::kAdmitted);
  EXPECT_EQ(counter.TryAdd(kA), Admission::kTooManyFromAddress);
  EXPECT_EQ(counter.TryAdd(kB), Admission::kAdmitted);  // Another address is not affected.
  counter.Remove(kA);
  EXPECT_EQ(counter.TryAdd(kA), Admission::kAdmitted);
}

TEST(ClientLimitsTest, TotalLimit) {
  ConnectionCounter counter(/*max_total=*/2, /*max_per_address=*/0);
  EXPECT_EQ(counter.TryAdd(kA), Admission::kAdmitted);
  EXPECT_EQ(counter.TryAdd(kB), Admission::kAdmitted);
  EXPECT_EQ(counter.TryAdd(kB), Admission::kTooMany);
  counter.Remove(kA);
  EXPECT_EQ(counter.TryAdd(kB), Admission::kAdmitted);
}

TEST(ClientLimitsTest, SlotsGiveBackExactlyOnce) {
  ConnectionCounter gateway(/*max_total=*/0, /*max_per_address=*/1);
  ConnectionCounter function(/*max_total=*/1, /*max_per_address=*/0);
  {
    ConnectionSlots slots;
    ASSERT_EQ(slots.Take(gateway, kA), Admission::kAdmitted);
    ASSERT_EQ(slots.Take(function, kA), Admission::kAdmitted);
    EXPECT_EQ(gateway.TryAdd(kA), Admission::kTooManyFromAddress);
    EXPECT_EQ(function.TryAdd(kB), Admission::kTooMany);
    slots.Release();
    slots.Release();  // A second release gives nothing back twice...
  }                   // ...and neither does the destructor after it.
  EXPECT_EQ(gateway.TryAdd(kA), Admission::kAdmitted);
  EXPECT_EQ(gateway.TryAdd(kA), Admission::kTooManyFromAddress);
  EXPECT_EQ(function.TryAdd(kB), Admission::kAdmitted);
  EXPECT_EQ(function.TryAdd(kB), Admission::kTooMany);
}

TEST(ClientLimitsTest, RefusedTakeHoldsNothing) {
  ConnectionCounter counter(/*max_total=*/0, /*max_per_address=*/1);
  ASSERT_EQ(counter.TryAdd(kA), Admission::kAdmitted);
  {
    ConnectionSlots slots;
    EXPECT_EQ(slots.Take(counter, kA), Admission::kTooManyFromAddress);
  }  // Its destructor must not give back the count it never took.
  EXPECT_EQ(counter.TryAdd(kA), Admission::kTooManyFromAddress);
}

}  // namespace
}  // namespace fngate::gateway
