// File: tests/support/subprocess.h
// Subprocess: an RAII child process for end-to-end tests (gRPC's test/cpp/util/subprocess.h
// idea), plus ReadyLine, the parsed `READY name=port ...` line every fngate binary prints.
//
//   absl::StatusOr<std::unique_ptr<Subprocess>> worker =
//       Subprocess::Start({FNGATE_ECHO_FUNCTION_BIN, "--listen=127.0.0.1:0", "--log_events"});
//   absl::StatusOr<ReadyLine> ready = (*worker)->WaitForReady(absl::Seconds(10));
//   int port = ready->Port("grpc");
//   ...
//   ASSERT_TRUE((*worker)->WaitForOutput("EVENT kind=connect", absl::Seconds(5)).ok());
//
// The child's stdout and stderr are read through pipes by one reader thread into a buffer;
// with FNGATE_TEST_VERBOSE set in the environment, every line is also echoed to the test's
// stderr as `[<program>:<pid> out|err] line`.
//
// Lifetime: the destructor never leaks the child. If it still runs, it gets SIGTERM, up to
// kTermGrace to exit, then SIGKILL; it is always reaped and the reader thread joined. The child
// also gets PR_SET_PDEATHSIG(SIGKILL), so it dies if the thread that started it dies (a crashed
// test binary leaves no stray gateways behind): start children from the test's main thread.
//
// Thread safety: every method may be called from any thread, concurrently; the destructor
// must not race with other calls.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fngate::test_support {

// `READY ws=41234 control=41235 admin=41236`, parsed. Copyable value.
class ReadyLine {
 public:
  // `line` must start with "READY"; every other word must be key=value.
  static absl::StatusOr<ReadyLine> Parse(absl::string_view line);

  // The value of `name` as a TCP port, or 0 when absent or not a number in 1..65535.
  int Port(absl::string_view name) const;
  // The raw value of `name`, if present.
  std::optional<std::string> Get(absl::string_view name) const;
  // The whole line, without the newline.
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::map<std::string, std::string, std::less<>> values_;
};

class Subprocess {
 public:
  // How long the destructor waits after SIGTERM before SIGKILL, unless set_term_grace().
  static constexpr absl::Duration kTermGrace = absl::Seconds(5);

  // Starts argv[0] (a path, not searched in PATH) with arguments argv[1..]. stdin is
  // /dev/null; the environment is inherited. Fails with the exec error if it cannot run.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(std::vector<std::string> argv);

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  pid_t Pid() const { return pid_; }
  // The program name (basename of argv[0]), for messages.
  const std::string& name() const { return name_; }

  // Waits for the first stdout line starting with "READY " and parses it. Fails early (without
  // waiting out the timeout) when the child closes its stdout or exits first.
  absl::StatusOr<ReadyLine> WaitForReady(absl::Duration timeout);

  // Waits until the captured output (stdout and stderr, whole lines, in arrival order) contains
  // `substring`, or until `done(output)` returns true. `done` is called under a lock, often:
  // keep it cheap and side-effect free. DEADLINE_EXCEEDED carries the output's tail.
  absl::Status WaitForOutput(absl::string_view substring, absl::Duration timeout);
  absl::Status WaitForOutput(std::function<bool(absl::string_view output)> done,
                             absl::Duration timeout);

  // How many times `substring` occurs (non-overlapping) in the captured output so far.
  int CountOutput(absl::string_view substring) const;
  // Everything captured so far: complete lines of stdout and stderr in arrival order (a last
  // line without a newline is added once its stream closes).
  std::string Output() const;
  std::string Stdout() const;
  std::string Stderr() const;
  // The last `max_bytes` of Output(), for failure messages.
  std::string OutputTail(size_t max_bytes = 4000) const;

  // kill(pid, sig). FAILED_PRECONDITION once the child has been reaped.
  absl::Status Signal(int sig);

  // Waits for the child to exit and reaps it. Returns its exit code, or 128 + signal number
  // when a signal killed it (shell convention). Once reaped, returns the same value again at
  // once. After it returns, Output() holds everything the child wrote.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // True once Wait() has reaped the child.
  bool Reaped() const;

  // Changes the destructor's SIGTERM-to-SIGKILL grace (default kTermGrace). Not thread-safe.
  void set_term_grace(absl::Duration grace) { term_grace_ = grace; }

 private:
  Subprocess(pid_t pid, int pidfd, int stdout_fd, int stderr_fd, int wake_fd, std::string name);

  void ReadLoop();
  void Append(int stream, absl::string_view data) ABSL_LOCKS_EXCLUDED(mu_);
  // Wait for the reader to see EOF on both pipes, at most `timeout`.
  bool AwaitReaderEof(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  const pid_t pid_;
  const int pidfd_;  // -1 if pidfd_open is unavailable; then Wait() polls waitpid.
  const int stdout_fd_;
  const int stderr_fd_;
  const int wake_fd_;  // eventfd: tells the reader thread to stop even if the pipes stay open.
  const std::string name_;
  const bool verbose_;
  absl::Duration term_grace_ = kTermGrace;

  mutable absl::Mutex mu_;
  std::string stdout_ ABSL_GUARDED_BY(mu_);    // Raw stdout bytes.
  std::string stderr_ ABSL_GUARDED_BY(mu_);    // Raw stderr bytes.
  std::string partial_[2] ABSL_GUARDED_BY(mu_);  // Incomplete last line per stream.
  std::string combined_ ABSL_GUARDED_BY(mu_);  // Complete lines of both, arrival order.
  bool reader_done_ ABSL_GUARDED_BY(mu_) = false;

  mutable absl::Mutex wait_mu_;  // Serialises reaping.
  std::optional<int> exit_code_ ABSL_GUARDED_BY(wait_mu_);

  std::thread reader_;
};

}  // namespace fngate::test_support
