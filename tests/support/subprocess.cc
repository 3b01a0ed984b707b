#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace fngate::test_support {
namespace {

constexpr int kStdout = 0;
constexpr int kStderr = 1;

absl::Status ErrnoStatus(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

void CloseFd(int fd) {
  if (fd >= 0) ::close(fd);
}

int CountOccurrences(absl::string_view haystack, absl::string_view needle) {
  if (needle.empty()) return 0;
  int count = 0;
  for (size_t pos = haystack.find(needle); pos != absl::string_view::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++count;
  }
  return count;
}

std::string Tail(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  return absl::StrCat("...", text.substr(text.size() - max_bytes));
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Runs in the forked child of a possibly multi-threaded parent: async-signal-safe calls only.
[[noreturn]] void ExecChild(char* const* argv, int stdout_fd, int stderr_fd, int error_fd,
                            pid_t parent) {
  // Die with the parent (thread) instead of leaking when the test binary crashes.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);

  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
  ::dup2(stdout_fd, STDOUT_FILENO);
  ::dup2(stderr_fd, STDERR_FILENO);
  // Descriptors the parent opened without O_CLOEXEC (sockets of other tests' clients, ...)
  // must not leak into the child. error_fd is O_CLOEXEC already and must stay open until exec.
#ifdef SYS_close_range
  ::syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
#endif

  // Ignored signals and the blocked mask survive exec: give the child a clean slate.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  ::execv(argv[0], argv);
  int err = errno;
  [[maybe_unused]] ssize_t n = ::write(error_fd, &err, sizeof(err));
  ::_exit(127);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ReadyLine

absl::StatusOr<ReadyLine> ReadyLine::Parse(absl::string_view line) {
  line = absl::StripTrailingAsciiWhitespace(line);
  std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (words.empty() || words[0] != "READY") {
    return absl::InvalidArgumentError(absl::StrCat("not a READY line: '", line, "'"));
  }
  ReadyLine ready;
  ready.text_ = std::string(line);
  for (size_t i = 1; i < words.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(words[i], absl::MaxSplits('=', 1));
    if (kv.first.empty() || words[i].find('=') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("READY line word '", words[i], "' is not key=value: '", line, "'"));
    }
    ready.values_[std::string(kv.first)] = std::string(kv.second);
  }
  return ready;
}

int ReadyLine::Port(absl::string_view name) const {
  auto it = values_.find(name);
  int port = 0;
  if (it == values_.end() || !absl::SimpleAtoi(it->second, &port)) return 0;
  return port >= 1 && port <= 65535 ? port : 0;
}

std::optional<std::string> ReadyLine::Get(absl::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

// ---------------------------------------------------------------------------------------------
// Subprocess

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(std::vector<std::string> argv) {
  if (argv.empty() || argv[0].empty()) return absl::InvalidArgumentError("empty argv");

  // Everything the child needs is prepared before fork(): no allocation after it.
  std::vector<char*> c_argv;
  c_argv.reserve(argv.size() + 1);
  for (std::string& arg : argv) c_argv.push_back(arg.data());
  c_argv.push_back(nullptr);

  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  int exec_error[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : {out[0], out[1], err[0], err[1], exec_error[0], exec_error[1]}) CloseFd(fd);
  };
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 ||
      ::pipe2(exec_error, O_CLOEXEC) != 0) {
    int e = errno;
    close_all();
    return ErrnoStatus("pipe2", e);
  }
  int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    int e = errno;
    close_all();
    return ErrnoStatus("eventfd", e);
  }

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    close_all();
    CloseFd(wake_fd);
    return ErrnoStatus("fork", e);
  }
  if (pid == 0) ExecChild(c_argv.data(), out[1], err[1], exec_error[1], parent);

  CloseFd(out[1]);
  CloseFd(err[1]);
  CloseFd(exec_error[1]);
  out[1] = err[1] = exec_error[1] = -1;

  // The error pipe closes on a successful exec (O_CLOEXEC) or carries the exec errno.
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_error[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  CloseFd(exec_error[0]);
  if (n == static_cast<ssize_t>(sizeof(exec_errno))) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CloseFd(out[0]);
    CloseFd(err[0]);
    CloseFd(wake_fd);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot execute ", argv[0], ": ", std::strerror(exec_errno)));
  }

  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // -1 on old kernels.
  std::string name(argv[0]);
  if (size_t slash = name.rfind('/'); slash != std::string::npos) name.erase(0, slash + 1);
  return std::unique_ptr<Subprocess>(
      new Subprocess(pid, pidfd, out[0], err[0], wake_fd, std::move(name)));
}

Subprocess::Subprocess(pid_t pid, int pidfd, int stdout_fd, int stderr_fd, int wake_fd,
                       std::string name)
    : pid_(pid),
      pidfd_(pidfd),
      stdout_fd_(stdout_fd),
      stderr_fd_(stderr_fd),
      wake_fd_(wake_fd),
      name_(std::move(name)),
      verbose_(std::getenv("FNGATE_TEST_VERBOSE") != nullptr &&
               *std::getenv("FNGATE_TEST_VERBOSE") != '\0') {
  reader_ = std::thread([this] { ReadLoop(); });
}

Subprocess::~Subprocess() {
  if (!Reaped()) {
    ::kill(pid_, SIGTERM);
    if (!Wait(term_grace_).ok()) {
      ::kill(pid_, SIGKILL);
      // SIGKILL cannot be ignored: this returns promptly.
      absl::StatusOr<int> killed = Wait(absl::Seconds(30));
      if (!killed.ok()) {
        int status = 0;
        ::waitpid(pid_, &status, 0);
      }
    }
  }
  // A grandchild may still hold the pipes: give the reader a moment, then stop it anyway.
  if (!AwaitReaderEof(absl::Seconds(1))) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
  reader_.join();
  CloseFd(stdout_fd_);
  CloseFd(stderr_fd_);
  CloseFd(wake_fd_);
  CloseFd(pidfd_);
}

void Subprocess::ReadLoop() {
  pollfd fds[3] = {{stdout_fd_, POLLIN, 0}, {stderr_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  bool open[2] = {true, true};
  char buffer[65536];
  while (open[kStdout] || open[kStderr]) {
    for (int i = 0; i < 2; ++i) fds[i].fd = open[i] ? (i == 0 ? stdout_fd_ : stderr_fd_) : -1;
    int ready = ::poll(fds, 3, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents != 0) {
      // Told to stop: take what is buffered in the pipes right now, then quit.
      for (int i = 0; i < 2; ++i) {
        if (!open[i]) continue;
        int fd = i == 0 ? stdout_fd_ : stderr_fd_;
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        ssize_t n;
        while ((n = ::read(fd, buffer, sizeof(buffer))) > 0) {
          Append(i, absl::string_view(buffer, static_cast<size_t>(n)));
        }
      }
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (!open[i] || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        Append(i, absl::string_view(buffer, static_cast<size_t>(n)));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        open[i] = false;
        Append(i, absl::string_view());  // Flushes an unterminated last line.
      }
    }
  }
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < 2; ++i) {
    if (!partial_[i].empty()) {
      absl::StrAppend(&combined_, partial_[i], "\n");
      partial_[i].clear();
    }
  }
  reader_done_ = true;
}

void Subprocess::Append(int stream, absl::string_view data) {
  std::string echo;
  {
    absl::MutexLock lock(&mu_);
    (stream == kStdout ? stdout_ : stderr_).append(data.data(), data.size());
    std::string& partial = partial_[stream];
    partial.append(data.data(), data.size());
    // Only whole lines enter combined_, so a line of one stream is never cut by the other.
    // Empty `data` means the stream closed: flush an unterminated last line.
    size_t take = partial.size();
    if (!data.empty()) {
      size_t newline = partial.rfind('\n');
      if (newline == std::string::npos) return;
      take = newline + 1;
    }
    if (take == 0) return;
    absl::string_view lines(partial.data(), take);
    combined_.append(lines.data(), lines.size());
    if (lines.back() != '\n') combined_ += '\n';
    if (verbose_) {
      const char* tag = stream == kStdout ? "out" : "err";
      for (absl::string_view line : absl::StrSplit(lines, '\n', absl::SkipEmpty())) {
        absl::StrAppend(&echo, "[", name_, ":", pid_, " ", tag, "] ", line, "\n");
      }
    }
    partial.erase(0, take);
  }
  if (!echo.empty()) {
    [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, echo.data(), echo.size());
  }
}

bool Subprocess::AwaitReaderEof(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&reader_done_), timeout);
}

absl::StatusOr<ReadyLine> Subprocess::WaitForReady(absl::Duration timeout) {
  std::optional<std::string> line;
  bool stdout_closed = false;
  auto found = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // READY is a whole line: either at the very start or after a newline.
    size_t pos = 0;
    while (pos < stdout_.size()) {
      size_t end = stdout_.find('\n', pos);
      if (end == std::string::npos) break;
      absl::string_view candidate(stdout_.data() + pos, end - pos);
      if (absl::StartsWith(candidate, "READY ") || candidate == "READY") {
        line = std::string(candidate);
        return true;
      }
      pos = end + 1;
    }
    stdout_closed = reader_done_;
    return stdout_closed;
  };
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&found), timeout);
  }
  if (line.has_value()) return ReadyLine::Parse(*line);
  return absl::DeadlineExceededError(absl::StrCat(
      name_, " (pid ", pid_, ") printed no READY line ",
      stdout_closed ? "before closing its output" : absl::StrCat("within ", absl::FormatDuration(timeout)),
      "; output:\n", OutputTail()));
}

absl::Status Subprocess::WaitForOutput(absl::string_view substring, absl::Duration timeout) {
  std::string needle(substring);
  absl::Status status = WaitForOutput(
      [&needle](absl::string_view output) { return output.find(needle) != absl::string_view::npos; },
      timeout);
  if (!status.ok()) {
    return absl::DeadlineExceededError(absl::StrCat("'", needle, "' not seen: ", status.message()));
  }
  return status;
}

absl::Status Subprocess::WaitForOutput(std::function<bool(absl::string_view output)> done,
                                       absl::Duration timeout) {
  auto check = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done(combined_); };
  bool ok;
  {
    absl::MutexLock lock(&mu_);
    ok = mu_.AwaitWithTimeout(absl::Condition(&check), timeout);
  }
  if (ok) return absl::OkStatus();
  return absl::DeadlineExceededError(
      absl::StrCat("condition on ", name_, " (pid ", pid_, ") output not met within ",
                   absl::FormatDuration(timeout), "; output:\n", OutputTail()));
}

int Subprocess::CountOutput(absl::string_view substring) const {
  absl::MutexLock lock(&mu_);
  return CountOccurrences(combined_, substring);
}

std::string Subprocess::Output() const {
  absl::MutexLock lock(&mu_);
  return combined_;
}

std::string Subprocess::Stdout() const {
  absl::MutexLock lock(&mu_);
  return stdout_;
}

std::string Subprocess::Stderr() const {
  absl::MutexLock lock(&mu_);
  return stderr_;
}

std::string Subprocess::OutputTail(size_t max_bytes) const {
  absl::MutexLock lock(&mu_);
  return Tail(combined_, max_bytes);
}

absl::Status Subprocess::Signal(int sig) {
  absl::MutexLock lock(&wait_mu_);
  if (exit_code_.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(name_, " (pid ", pid_, ") already exited"));
  }
  if (::kill(pid_, sig) != 0) return ErrnoStatus("kill", errno);
  return absl::OkStatus();
}

bool Subprocess::Reaped() const {
  absl::MutexLock lock(&wait_mu_);
  return exit_code_.has_value();
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  absl::MutexLock lock(&wait_mu_);
  if (exit_code_.has_value()) return *exit_code_;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = DecodeWaitStatus(status);
      break;
    }
    if (r < 0 && errno != EINTR) return ErrnoStatus("waitpid", errno);
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(name_, " (pid ", pid_, ") still running after ",
                                                      absl::FormatDuration(timeout)));
    }
    if (pidfd_ >= 0) {
      // Readable once the child exits: an exact wait, no polling.
      pollfd pfd = {pidfd_, POLLIN, 0};
      int ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left) + 1));
      ::poll(&pfd, 1, ms);
    } else {
      absl::SleepFor(std::min(left, absl::Milliseconds(5)));
    }
  }
  // The child is gone, so its pipes are closed (unless it left a grandchild holding them).
  AwaitReaderEof(absl::Seconds(2));
  return *exit_code_;
}

}  // namespace fngate::test_support
