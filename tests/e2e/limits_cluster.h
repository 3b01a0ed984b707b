// File: tests/e2e/limits_cluster.h
// LimitsClusterTest: the fixture of the limit and protocol e2e tests. One echo worker serves
// several functions of one gateway: /echo with the gateway's limits, and any number of
// functions with limits of their own (so the limit under test cannot touch /echo). A
// bystander connection on /echo is opened before the test's own, and each test checks that
// it still echoes afterwards: a limit hits one connection, not its neighbours.
//
//   StartCluster({"--limits.max_header_bytes=1024"},
//                {{"tight", {"limits.max_message_bytes=1024"}}});
//
// Header-only: it is shared by a few test binaries and is small.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {

struct FunctionWithFlags {
  std::string name;
  // Flags relative to the function's entry, e.g. "limits.idle_timeout_ms=400".
  std::vector<std::string> flags;
};

class LimitsClusterTest : public ::testing::Test {
 protected:
  void StartCluster(const std::vector<std::string>& gateway_flags,
                    const std::vector<FunctionWithFlags>& functions = {}) {
    absl::StatusOr<Started> worker = StartEchoWorker();
    ASSERT_TRUE(IsOk(worker));
    worker_ = *std::move(worker);
    std::vector<std::string> flags = {FunctionFlag("echo", {&worker_})};
    for (size_t i = 0; i < functions.size(); ++i) {
      flags.push_back(FunctionFlag(functions[i].name, {&worker_}));
      for (const std::string& flag : functions[i].flags) {
        flags.push_back(absl::StrCat("--functions[", i + 1, "].", flag));
      }
    }
    flags.insert(flags.end(), gateway_flags.begin(), gateway_flags.end());
    absl::StatusOr<Started> gateway = StartGateway(flags);
    ASSERT_TRUE(IsOk(gateway));
    gateway_ = *std::move(gateway);

    absl::StatusOr<std::string> id = ConnectAndGetId(bystander_, gateway_, worker_, "/echo");
    ASSERT_TRUE(IsOk(id));
    bystander_id_ = *id;
    ExpectEchoes(bystander_, "before");
  }

  int ws_port() const { return gateway_.ready.Port("ws"); }

  // A message makes the round trip through the worker on `client`.
  static void ExpectEchoes(test_support::WsTestClient& client, const std::string& text) {
    ASSERT_TRUE(IsOk(client.SendText(text, kIoTimeout)));
    absl::StatusOr<test_support::WsMessage> reply = client.Read(kIoTimeout);
    ASSERT_TRUE(IsOk(reply));
    EXPECT_EQ(reply->data, text);
  }

  void ExpectBystanderEchoes() { ExpectEchoes(bystander_, "after"); }

  // A raw client, TCP-connected to the gateway's WebSocket port.
  void ConnectRaw(test_support::RawWsClient& raw,
                  const test_support::RawConnectOptions& options = {}) {
    ASSERT_TRUE(IsOk(raw.Connect("127.0.0.1", ws_port(), kIoTimeout, options)));
  }

  // fngate_limit_hits_total for `function` ("" before routing) and `kind`.
  uint64_t LimitHits(const std::string& function, const std::string& kind) {
    absl::StatusOr<uint64_t> value = ReadMetric(
        gateway_, absl::StrCat("fngate_limit_hits_total{function=\"", function, "\",kind=\"",
                               kind, "\"}"));
    EXPECT_TRUE(IsOk(value));
    return value.ok() ? *value : 0;
  }

  // Waits until fngate_limit_hits_total for `function` and `kind` is at least `expected`
  // (some limits are counted just after the client already saw their effect), then returns it.
  uint64_t WaitForLimitHits(const std::string& function, const std::string& kind,
                            uint64_t expected) {
    uint64_t value = 0;
    PollUntil([&] { return (value = LimitHits(function, kind)) >= expected; }, kEventTimeout);
    return value;
  }

  // Waits for the single disconnect event of `id` and checks its code and closed_by.
  void ExpectDisconnect(const std::string& id, const std::string& by, int code) {
    ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", id, 1)));
    EXPECT_TRUE(HasSingleDisconnect(Events(worker_), id, by, code)) << worker_->OutputTail();
  }

  // Stops the gateway (it delivers every disconnect before it exits), then the worker: after
  // this the worker's log is complete, and its connect events can be counted.
  void StopAll() {
    EXPECT_TRUE(IsOk(Stop(gateway_)));
    EXPECT_TRUE(IsOk(Stop(worker_)));
  }
  int ConnectEvents() { return static_cast<int>(Events(worker_, "connect").size()); }

  Started worker_;
  Started gateway_;
  test_support::WsTestClient bystander_;
  std::string bystander_id_;
};

}  // namespace fngate::e2e
