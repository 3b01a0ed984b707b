// Unit tests of tests/support/subprocess.h against /bin/sh, so the e2e machinery is checked
// before any fngate binary exists.
#include "tests/support/subprocess.h"

#include <signal.h>
#include <sys/wait.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fngate::test_support {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(10);

std::unique_ptr<Subprocess> StartShell(const std::string& script) {
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start({"/bin/sh", "-c", script});
  EXPECT_TRUE(process.ok()) << process.status();
  return process.ok() ? std::move(*process) : nullptr;
}

TEST(ReadyLineTest, ParsesPorts) {
  absl::StatusOr<ReadyLine> ready = ReadyLine::Parse("READY ws=41234 control=41235 admin=1\n");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->Port("ws"), 41234);
  EXPECT_EQ(ready->Port("control"), 41235);
  EXPECT_EQ(ready->Port("admin"), 1);
  EXPECT_EQ(ready->Port("grpc"), 0);
  EXPECT_EQ(ready->Get("ws"), "41234");
  EXPECT_EQ(ready->text(), "READY ws=41234 control=41235 admin=1");
}

TEST(ReadyLineTest, RejectsOtherLines) {
  EXPECT_FALSE(ReadyLine::Parse("listening on 8080").ok());
  EXPECT_FALSE(ReadyLine::Parse("READY ws").ok());
  absl::StatusOr<ReadyLine> ready = ReadyLine::Parse("READY ws=http");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->Port("ws"), 0);
  EXPECT_EQ(ReadyLine::Parse("READY ws=70000")->Port("ws"), 0);
}

TEST(SubprocessTest, ReadySignalWait) {
  std::unique_ptr<Subprocess> child =
      StartShell("echo starting >&2; echo READY a=1 grpc=4242; exec sleep 30");
  ASSERT_NE(child, nullptr);
  EXPECT_GT(child->Pid(), 0);
  absl::StatusOr<ReadyLine> ready = child->WaitForReady(kTimeout);
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->Port("a"), 1);
  EXPECT_EQ(ready->Port("grpc"), 4242);
  EXPECT_TRUE(child->WaitForOutput("starting", kTimeout).ok());

  EXPECT_FALSE(child->Reaped());
  ASSERT_TRUE(child->Signal(SIGTERM).ok());
  absl::StatusOr<int> code = child->Wait(kTimeout);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + SIGTERM);
  EXPECT_TRUE(child->Reaped());
  EXPECT_FALSE(child->Signal(SIGTERM).ok());
  EXPECT_EQ(*child->Wait(kTimeout), 128 + SIGTERM);  // Same answer again.
}

TEST(SubprocessTest, ExitCodeAndAllOutputAfterWait) {
  std::unique_ptr<Subprocess> child =
      StartShell("echo out-line; echo err-line >&2; printf 'no newline' >&2; exit 3");
  ASSERT_NE(child, nullptr);
  absl::StatusOr<int> code = child->Wait(kTimeout);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 3);
  // Wait() returns only after the reader took everything the child wrote.
  EXPECT_EQ(child->Stdout(), "out-line\n");
  EXPECT_EQ(child->Stderr(), "err-line\nno newline");
  EXPECT_NE(child->Output().find("out-line\n"), std::string::npos);
  EXPECT_NE(child->Output().find("err-line\n"), std::string::npos);
  EXPECT_NE(child->Output().find("no newline\n"), std::string::npos);
}

TEST(SubprocessTest, WaitForReadyFailsFastWhenChildExits) {
  std::unique_ptr<Subprocess> child = StartShell("echo bad flag >&2; exit 2");
  ASSERT_NE(child, nullptr);
  absl::Time start = absl::Now();
  absl::StatusOr<ReadyLine> ready = child->WaitForReady(absl::Seconds(30));
  EXPECT_FALSE(ready.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));  // Did not wait out the timeout.
  EXPECT_NE(std::string(ready.status().message()).find("bad flag"), std::string::npos)
      << ready.status();
}

TEST(SubprocessTest, WaitTimesOutWhileRunning) {
  std::unique_ptr<Subprocess> child = StartShell("exec sleep 30");
  ASSERT_NE(child, nullptr);
  absl::StatusOr<int> code = child->Wait(absl::Milliseconds(50));
  EXPECT_EQ(code.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(child->Reaped());
}

TEST(SubprocessTest, WaitForOutputPredicateAndCount) {
  std::unique_ptr<Subprocess> child =
      StartShell("for i in 1 2 3 4 5; do echo EVENT kind=message seq=$i >&2; done; exec sleep 30");
  ASSERT_NE(child, nullptr);
  absl::Status status = child->WaitForOutput(
      [](absl::string_view output) {
        return output.find("seq=5\n") != absl::string_view::npos;
      },
      kTimeout);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(child->CountOutput("EVENT kind=message"), 5);
  EXPECT_EQ(child->CountOutput("nothing"), 0);

  absl::Status missing = child->WaitForOutput("never printed", absl::Milliseconds(50));
  EXPECT_EQ(missing.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(std::string(missing.message()).find("seq=3"), std::string::npos) << missing;
}

TEST(SubprocessTest, DestructorTerminatesThenKills) {
  pid_t polite_pid = 0;
  pid_t stubborn_pid = 0;
  {
    std::unique_ptr<Subprocess> polite = StartShell("echo READY; exec sleep 30");
    // Ignores SIGTERM: the destructor must fall back to SIGKILL after the grace period.
    std::unique_ptr<Subprocess> stubborn =
        StartShell("trap '' TERM; echo READY; while :; do sleep 1; done");
    ASSERT_NE(polite, nullptr);
    ASSERT_NE(stubborn, nullptr);
    stubborn->set_term_grace(absl::Milliseconds(300));
    ASSERT_TRUE(polite->WaitForReady(kTimeout).ok());
    ASSERT_TRUE(stubborn->WaitForReady(kTimeout).ok());
    polite_pid = polite->Pid();
    stubborn_pid = stubborn->Pid();
  }
  // Both were reaped by their destructors: they are no longer our children.
  EXPECT_EQ(::waitpid(polite_pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(::waitpid(stubborn_pid, nullptr, WNOHANG), -1);
  EXPECT_NE(::kill(polite_pid, 0), 0);
  EXPECT_NE(::kill(stubborn_pid, 0), 0);
}

TEST(SubprocessTest, StartFailsForMissingBinary) {
  absl::StatusOr<std::unique_ptr<Subprocess>> child = Subprocess::Start({"/nonexistent/fngate"});
  ASSERT_FALSE(child.ok());
  EXPECT_NE(std::string(child.status().message()).find("/nonexistent/fngate"), std::string::npos);
}

}  // namespace
}  // namespace fngate::test_support
