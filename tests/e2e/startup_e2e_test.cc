// End to end: how fngate starts or refuses to. A config file is accepted and used; a bad one
// (unknown key, typo in a nested key, missing file) and an unknown flag make fngate exit 2
// before binding anything, with a message naming the file, line and key, or the flag.
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::Subprocess;
using test_support::WsMessage;
using test_support::WsTestClient;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kUsageExitCode = 2;  // The binary contract: bad flag or config.

// Writes `contents` to a fresh file under the test temp dir and returns its path.
std::string WriteConfig(const std::string& name, const std::string& contents) {
  std::string path = absl::StrCat(::testing::TempDir(), "/fngate_startup_", ::getpid(), "_", name);
  std::ofstream(path) << contents;
  return path;
}

// Runs fngate with `args`; expects it to exit with kUsageExitCode without printing READY.
// Returns its stderr.
std::string ExpectRefusal(const std::vector<std::string>& args) {
  absl::StatusOr<std::unique_ptr<Subprocess>> gateway = RunGatewayRaw(args);
  EXPECT_TRUE(IsOk(gateway));
  if (!gateway.ok()) return "";
  absl::StatusOr<int> code = (*gateway)->Wait(kExitTimeout);
  EXPECT_TRUE(IsOk(code)) << "fngate kept running; output:\n" << (*gateway)->OutputTail();
  if (code.ok()) {
    EXPECT_EQ(*code, kUsageExitCode) << (*gateway)->Output();
  }
  EXPECT_THAT((*gateway)->Stdout(), Not(HasSubstr("READY")));
  return (*gateway)->Stderr();
}

// `stderr` names `path` and `line`, as "path:line" or "... line N ...".
::testing::AssertionResult NamesFileAndLine(const std::string& stderr_text, const std::string& path,
                                            int line) {
  if (stderr_text.find(path) == std::string::npos) {
    return ::testing::AssertionFailure() << "file " << path << " not named in:\n" << stderr_text;
  }
  if (stderr_text.find(absl::StrCat(path, ":", line)) == std::string::npos &&
      stderr_text.find(absl::StrCat("line ", line)) == std::string::npos) {
    return ::testing::AssertionFailure() << "line " << line << " not named in:\n" << stderr_text;
  }
  return ::testing::AssertionSuccess();
}

TEST(StartupE2eTest, ConfigFileIsUsed) {
  absl::StatusOr<Started> worker = StartEchoWorker();
  ASSERT_TRUE(IsOk(worker));
  const std::string path = WriteConfig("good.yaml", absl::StrCat(
      "# a complete small config\n"
      "listen: \"127.0.0.1:0\"\n"
      "control_listen: \"127.0.0.1:0\"\n"
      "admin_listen: \"127.0.0.1:0\"\n"
      "io_threads: 2\n"
      "functions:\n"
      "  - name: echo\n"
      "    target: \"127.0.0.1:", worker->ready.Port("grpc"), "\"\n"));
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      RunGatewayRaw({absl::StrCat("--config=", path)});
  ASSERT_TRUE(IsOk(process));
  Started gateway{std::move(*process), {}};
  absl::StatusOr<test_support::ReadyLine> ready = gateway->WaitForReady(kStartupTimeout);
  ASSERT_TRUE(IsOk(ready));
  gateway.ready = *ready;

  // The function route came from the file.
  WsTestClient client;
  ASSERT_TRUE(IsOk(client.Connect("127.0.0.1", ready->Port("ws"), "/echo", kIoTimeout)));
  ASSERT_TRUE(IsOk(client.SendText("configured", kIoTimeout)));
  absl::StatusOr<WsMessage> reply = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(reply));
  EXPECT_EQ(reply->data, "configured");
  ASSERT_TRUE(IsOk(client.Close(1000, kIoTimeout)));
  EXPECT_TRUE(IsOk(Stop(gateway)));
}

TEST(StartupE2eTest, UnknownConfigKeyNamesFileLineAndKey) {
  const std::string path = WriteConfig("unknown_key.yaml",
                                       "listen: \"127.0.0.1:0\"\n"
                                       "control_listen: \"127.0.0.1:0\"\n"
                                       "no_such_key: 1\n"
                                       "admin_listen: \"127.0.0.1:0\"\n");
  std::string stderr_text = ExpectRefusal({absl::StrCat("--config=", path)});
  EXPECT_TRUE(NamesFileAndLine(stderr_text, path, 3));
  EXPECT_THAT(stderr_text, HasSubstr("no_such_key"));
}

TEST(StartupE2eTest, TypoInNestedKeyNamesFileLineAndKey) {
  const std::string path = WriteConfig("nested_typo.yaml",
                                       "listen: \"127.0.0.1:0\"\n"
                                       "limits:\n"
                                       "  max_message_bytes: 1024\n"
                                       "  max_mesage_bytes: 2048\n");
  std::string stderr_text = ExpectRefusal({absl::StrCat("--config=", path),
                                           "--control_listen=127.0.0.1:0",
                                           "--admin_listen=127.0.0.1:0"});
  EXPECT_TRUE(NamesFileAndLine(stderr_text, path, 4));
  EXPECT_THAT(stderr_text, HasSubstr("max_mesage_bytes"));
}

TEST(StartupE2eTest, MissingConfigFileIsNamed) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/fngate_startup_no_such_file.yaml");
  std::string stderr_text = ExpectRefusal({absl::StrCat("--config=", path), "--listen=127.0.0.1:0",
                                           "--control_listen=127.0.0.1:0",
                                           "--admin_listen=127.0.0.1:0"});
  EXPECT_THAT(stderr_text, HasSubstr(path));
}

TEST(StartupE2eTest, UnknownFlagIsNamed) {
  std::string stderr_text = ExpectRefusal({"--listen=127.0.0.1:0", "--control_listen=127.0.0.1:0",
                                           "--admin_listen=127.0.0.1:0", "--no_such_flag=1"});
  EXPECT_THAT(stderr_text, HasSubstr("no_such_flag"));
}

}  // namespace
}  // namespace fngate::e2e
