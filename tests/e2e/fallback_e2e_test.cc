// End to end: a worker that serves only the unary methods (as a worker in another language
// might) behind the default `auto` transport. The gateway's first events go out on Events
// streams, get UNIMPLEMENTED, and must be re-sent as unary calls: none may be lost or fail.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::WsMessage;
using test_support::WsTestClient;

TEST(FallbackE2eTest, UnaryOnlyWorkerGetsEveryEventOnce) {
  absl::StatusOr<Started> worker = StartAndWaitReady({FNGATE_UNARY_ECHO_WORKER_BIN}, {"grpc"});
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway = StartGateway({FunctionFlag("echo", {&*worker})});
  ASSERT_TRUE(IsOk(gateway));

  // Several connections, each with messages already queued before any reply can come back,
  // so the first stream batches carry many events when UNIMPLEMENTED arrives.
  constexpr int kClients = 8;
  constexpr int kMessages = 5;
  std::vector<std::unique_ptr<WsTestClient>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(IsOk(clients.back()->Connect("127.0.0.1", gateway->ready.Port("ws"), "/echo",
                                             kIoTimeout)));
  }
  for (int m = 0; m < kMessages; ++m) {
    for (int c = 0; c < kClients; ++c) {
      ASSERT_TRUE(IsOk(clients[c]->SendText(absl::StrCat(c, ":", m), kIoTimeout)));
    }
  }
  for (int c = 0; c < kClients; ++c) {
    for (int m = 0; m < kMessages; ++m) {
      absl::StatusOr<WsMessage> reply = clients[c]->Read(kIoTimeout);
      ASSERT_TRUE(IsOk(reply)) << "client " << c << " message " << m;
      EXPECT_EQ(reply->data, absl::StrCat(c, ":", m));
    }
  }
  // Each message reached the worker exactly once. (Its log reaches us a little after the
  // replies: wait for the count, then check that it is not more.)
  EXPECT_TRUE(IsOk(WaitForEvents(*worker, "message", "", kClients * kMessages)));
  EXPECT_EQ((*worker)->CountOutput("EVENT kind=message"), kClients * kMessages);
  EXPECT_GE((*gateway)->CountOutput("workers do not serve Events; using unary calls"), 1);
}

}  // namespace
}  // namespace fngate::e2e
