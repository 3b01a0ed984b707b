// fault_worker: an echo worker on the fngate runtime that misbehaves on command, for the fault
// tests (tests/e2e/faults_e2e_test.cc, sick_replica_e2e_test.cc, drain_e2e_test.cc).
//
// Text messages:
//   "sleep:<ms>"   sleeps that long, then echoes (a slow worker: deadlines)
//   "fail:<code>"  answers with that gRPC status code (14 UNAVAILABLE, 8 RESOURCE_EXHAUSTED, ...)
//   "crash"        exits at once (exit code 3) in the middle of the call: the event was taken
//   anything else  echoed
// Connect query: ?connect_sleep=<ms> sleeps in OnConnect (the connect deadline).
// Signals: SIGUSR1 makes the replica sick: connect, message and disconnect events all answer
// UNAVAILABLE (error events cannot answer anything); SIGUSR2 heals it. Each change prints
// `FAULT sick=1` or `FAULT sick=0` on stderr once it is in effect.
// Flags of its own (before the runtime's): --disconnect_sleep_ms=N and --error_sleep_ms=N make
// every disconnect or error event that slow. Every other flag is the runtime's (--listen,
// --log_events, ...); EVENT lines are logged before a handler runs, sick or not.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fngate/runtime/function.h"
#include "fngate/runtime/worker.h"

namespace {

using fngate::runtime::ConnectContext;
using fngate::runtime::DisconnectContext;
using fngate::runtime::ErrorContext;
using fngate::runtime::MessageContext;

std::atomic<bool> g_sick{false};

absl::Status Sick() { return absl::UnavailableError("fault_worker: sick (SIGUSR1)"); }

// "<prefix><number>" -> number, or -1. (Debian's Abseil has its own string_view.)
int NumberAfter(std::string_view text, std::string_view prefix) {
  if (text.substr(0, prefix.size()) != prefix) return -1;
  const std::string_view digits = text.substr(prefix.size());
  int n = -1;
  if (!absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), &n) || n < 0) return -1;
  return n;
}

class FaultFunction final : public fngate::runtime::Function {
 public:
  FaultFunction(int disconnect_sleep_ms, int error_sleep_ms)
      : disconnect_sleep_ms_(disconnect_sleep_ms), error_sleep_ms_(error_sleep_ms) {}

  absl::Status OnConnect(ConnectContext& ctx) override {
    if (g_sick.load()) return Sick();
    int ms = 0;
    if (absl::SimpleAtoi(ctx.QueryParam("connect_sleep"), &ms) && ms > 0) {
      absl::SleepFor(absl::Milliseconds(ms));
    }
    return absl::OkStatus();
  }

  absl::Status OnMessage(MessageContext& ctx) override {
    if (g_sick.load()) return Sick();
    if (ctx.is_text()) {
      const std::string& text = ctx.data();
      if (int ms = NumberAfter(text, "sleep:"); ms >= 0) absl::SleepFor(absl::Milliseconds(ms));
      if (int code = NumberAfter(text, "fail:"); code > 0 && code <= 16) {
        return absl::Status(static_cast<absl::StatusCode>(code), "fault_worker: asked to fail");
      }
      if (text == "crash") {
        std::fputs("FAULT crash\n", stderr);
        ::_exit(3);  // No drain, no reply: the gateway's call breaks after the worker took it.
      }
    }
    ctx.Reply(ctx.payload());
    return absl::OkStatus();
  }

  absl::Status OnDisconnect(DisconnectContext&) override {
    if (g_sick.load()) return Sick();
    if (disconnect_sleep_ms_ > 0) absl::SleepFor(absl::Milliseconds(disconnect_sleep_ms_));
    return absl::OkStatus();
  }

  void OnError(ErrorContext&) override {
    if (error_sleep_ms_ > 0) absl::SleepFor(absl::Milliseconds(error_sleep_ms_));
  }

 private:
  const int disconnect_sleep_ms_;
  const int error_sleep_ms_;
};

// Takes SIGUSR1/SIGUSR2 (blocked in every thread) with sigwait: nothing runs in a handler.
void WatchSickSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGUSR2);
  while (true) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    g_sick.store(signal == SIGUSR1);
    std::fputs(signal == SIGUSR1 ? "FAULT sick=1\n" : "FAULT sick=0\n", stderr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread starts, so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  int disconnect_sleep_ms = 0;
  int error_sleep_ms = 0;
  std::vector<char*> runtime_args;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (int ms = NumberAfter(arg, "--disconnect_sleep_ms="); ms >= 0) {
      disconnect_sleep_ms = ms;
    } else if (int ms = NumberAfter(arg, "--error_sleep_ms="); ms >= 0) {
      error_sleep_ms = ms;
    } else {
      runtime_args.push_back(argv[i]);
    }
  }
  fngate::runtime::WorkerOptions options =
      fngate::runtime::InitWorker(static_cast<int>(runtime_args.size()), runtime_args.data());
  std::thread(WatchSickSignals).detach();
  FaultFunction function(disconnect_sleep_ms, error_sleep_ms);
  return fngate::runtime::RunWorker(function, options);
}
