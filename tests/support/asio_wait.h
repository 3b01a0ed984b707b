// File: tests/support/asio_wait.h
// RunUntilDone(): the one way the test clients turn Beast's async operations into blocking calls
// with a timeout. Internal to tests/support.
#pragma once

#include <algorithm>
#include <chrono>

#include <boost/asio/io_context.hpp>

#include "absl/time/time.h"

namespace fngate::test_support {

// Runs `ioc` on this thread until `done` becomes true or `timeout` passes. On timeout calls
// `cancel` (which must make the pending operation complete, e.g. by closing its socket), runs
// the io_context until the operation's handler has run, and returns false.
// Handlers must set `done` last. Thread safety: one caller per io_context.
template <typename Cancel>
bool RunUntilDone(boost::asio::io_context& ioc, const bool& done, absl::Duration timeout,
                  Cancel&& cancel) {
  const auto deadline =
      std::chrono::steady_clock::now() +
      absl::ToChronoNanoseconds(std::max(timeout, absl::ZeroDuration()));
  ioc.restart();
  while (!done) {
    if (ioc.run_one_until(deadline) == 0) break;  // Deadline passed (or nothing left to run).
  }
  if (done) return true;
  cancel();
  ioc.restart();
  // Closing the socket completes the operation at once; the bound only guards against bugs.
  while (!done && ioc.run_one_for(std::chrono::seconds(5)) != 0) {
  }
  return false;
}

}  // namespace fngate::test_support
