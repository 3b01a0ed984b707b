// fngatectl's command line: every command's flags become the right request, and every bad
// argument is an INVALID_ARGUMENT whose message names the command and the flag.
#include "gateway/ctl/ctl_args.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fngate::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

absl::StatusOr<Invocation> Parse(const std::vector<std::string>& args,
                                 const Environment& env = {}) {
  return ParseArgs(args, env);
}

// The parse must fail as a usage error whose message holds each of `parts`.
::testing::AssertionResult UsageError(const std::vector<std::string>& args,
                                      const std::vector<std::string>& parts,
                                      const Environment& env = {}) {
  absl::StatusOr<Invocation> invocation = ParseArgs(args, env);
  if (invocation.ok()) return ::testing::AssertionFailure() << "parsed without error";
  if (invocation.status().code() != absl::StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "not INVALID_ARGUMENT: " << invocation.status();
  }
  for (const std::string& part : parts) {
    if (!absl::StrContains(invocation.status().message(), part)) {
      return ::testing::AssertionFailure()
             << "message '" << invocation.status().message() << "' lacks '" << part << "'";
    }
  }
  return ::testing::AssertionSuccess() << invocation.status().message();
}

// A file in the test's temporary directory, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& contents) {
    path_ = absl::StrCat(::testing::TempDir(), "ctl_args_test_", ::getpid(), "_", counter_++);
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

// ---------------------------------------------------------------------------------------------
// Commands, help.

TEST(CtlArgsTest, NoCommandIsAUsageError) {
  EXPECT_TRUE(UsageError({}, {"no command given", "send", "sign-url"}));
  EXPECT_TRUE(UsageError({"--control", "x:1"}, {"no command given"}));
}

TEST(CtlArgsTest, UnknownCommandListsTheCommands) {
  EXPECT_TRUE(UsageError({"sned", "--conn", "a", "hi"}, {"unknown command 'sned'", "send, close"}));
  EXPECT_TRUE(UsageError({"help", "sned"}, {"unknown command 'sned'"}));
}

TEST(CtlArgsTest, HelpInEveryForm) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--help"}, {"-h"}, {"help"}}) {
    absl::StatusOr<Invocation> invocation = Parse(args);
    ASSERT_TRUE(invocation.ok()) << invocation.status();
    EXPECT_EQ(invocation->command, Command::kHelp);
    EXPECT_THAT(invocation->help, HasSubstr("usage: fngatectl COMMAND"));
    EXPECT_THAT(invocation->help, HasSubstr("force-logout"));
  }
  const char* commands[] = {"send",  "close", "emit", "force-logout", "join",
                            "leave", "bind",  "get",  "list",         "sign-url"};
  for (const char* command : commands) {
    // --help wins over other mistakes on the line: it always helps.
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {command, "--help"}, {command, "--bogus", "-h"}, {"help", command}}) {
      absl::StatusOr<Invocation> invocation = Parse(args);
      ASSERT_TRUE(invocation.ok()) << command << ": " << invocation.status();
      EXPECT_EQ(invocation->command, Command::kHelp);
      EXPECT_THAT(invocation->help, HasSubstr(absl::StrCat("usage: fngatectl ", command, " ")));
      EXPECT_THAT(invocation->help, HasSubstr("--control ADDR"));
    }
  }
  absl::StatusOr<Invocation> send = Parse({"send", "--help"});
  ASSERT_TRUE(send.ok());
  EXPECT_THAT(send->help, HasSubstr("--conn ID"));
  EXPECT_THAT(send->help, HasSubstr("--json JSON"));
}

// ---------------------------------------------------------------------------------------------
// Global flags.

TEST(CtlArgsTest, Defaults) {
  absl::StatusOr<Invocation> invocation = Parse({"get", "c1"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->connection.address, "127.0.0.1:8081");
  EXPECT_EQ(invocation->connection.token, "");
  EXPECT_FALSE(invocation->connection.tls);
  EXPECT_EQ(invocation->connection.timeout, absl::Seconds(10));
  EXPECT_EQ(invocation->output, OutputFormat::kText);
}

TEST(CtlArgsTest, ControlAddressFromFlagThenEnvironment) {
  Environment env;
  env.control = "10.0.0.1:9000";
  absl::StatusOr<Invocation> from_env = Parse({"get", "c1"}, env);
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->connection.address, "10.0.0.1:9000");

  absl::StatusOr<Invocation> from_flag = Parse({"get", "c1", "--control", "127.0.0.1:1"}, env);
  ASSERT_TRUE(from_flag.ok());
  EXPECT_EQ(from_flag->connection.address, "127.0.0.1:1");

  // Global flags go before or after the command.
  absl::StatusOr<Invocation> before = Parse({"--control=dns:///gw:8081", "get", "c1"});
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->connection.address, "dns:///gw:8081");

  EXPECT_TRUE(UsageError({"get", "c1", "--control="}, {"get", "--control: empty address"}));
  env.control = "";
  EXPECT_TRUE(UsageError({"get", "c1"}, {"FNGATE_CONTROL", "empty"}, env));
  EXPECT_TRUE(UsageError({"--control", "a:1", "get", "c1", "--control", "b:1"},
                         {"--control given more than once"}));
}

TEST(CtlArgsTest, TokenFromFlagFileOrEnvironment) {
  Environment env;
  env.token = "from-env";
  absl::StatusOr<Invocation> from_env = Parse({"get", "c1"}, env);
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->connection.token, "from-env");

  absl::StatusOr<Invocation> from_flag = Parse({"get", "c1", "--token", "t0k3n"}, env);
  ASSERT_TRUE(from_flag.ok());
  EXPECT_EQ(from_flag->connection.token, "t0k3n");

  TempFile file("s3cret\n");  // The newline an editor adds is not part of the token.
  absl::StatusOr<Invocation> from_file = Parse({"get", "c1", "--token-file", file.path()}, env);
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(from_file->connection.token, "s3cret");
}

TEST(CtlArgsTest, BadTokens) {
  TempFile file("x");
  EXPECT_TRUE(UsageError({"get", "c1", "--token", "a", "--token-file", file.path()},
                         {"--token or --token-file, not both"}));
  EXPECT_TRUE(UsageError({"get", "c1", "--token-file", "/nonexistent/token"},
                         {"get: --token-file: cannot read /nonexistent/token"}));
  TempFile empty("\n");
  EXPECT_TRUE(
      UsageError({"get", "c1", "--token-file", empty.path()}, {"--token-file", "is empty"}));
  EXPECT_TRUE(UsageError({"get", "c1", "--token="}, {"--token: empty token"}));
  EXPECT_TRUE(UsageError({"get", "c1", "--token", "two words"}, {"--token", "printable ASCII"}));
  Environment env;
  env.token = "bad\ttoken";
  EXPECT_TRUE(UsageError({"get", "c1"}, {"FNGATE_TOKEN", "printable ASCII"}, env));
}

TEST(CtlArgsTest, TlsFiles) {
  TempFile ca("-----BEGIN CERTIFICATE-----ca");
  TempFile cert("-----BEGIN CERTIFICATE-----cert");
  TempFile key("-----BEGIN PRIVATE KEY-----key");
  absl::StatusOr<Invocation> mutual =
      Parse({"get", "c1", "--tls-ca", ca.path(), "--tls-cert", cert.path(), "--tls-key", key.path(),
             "--tls-server-name", "gw.internal"});
  ASSERT_TRUE(mutual.ok()) << mutual.status();
  EXPECT_TRUE(mutual->connection.tls);
  EXPECT_EQ(mutual->connection.tls_root_certs, "-----BEGIN CERTIFICATE-----ca");
  EXPECT_EQ(mutual->connection.tls_cert_chain, "-----BEGIN CERTIFICATE-----cert");
  EXPECT_EQ(mutual->connection.tls_private_key, "-----BEGIN PRIVATE KEY-----key");
  EXPECT_EQ(mutual->connection.tls_server_name, "gw.internal");

  absl::StatusOr<Invocation> ca_only = Parse({"get", "c1", "--tls-ca", ca.path()});
  ASSERT_TRUE(ca_only.ok());
  EXPECT_TRUE(ca_only->connection.tls);
  EXPECT_EQ(ca_only->connection.tls_cert_chain, "");

  EXPECT_TRUE(UsageError({"get", "c1", "--tls-cert", cert.path()}, {"--tls-cert and --tls-key"}));
  EXPECT_TRUE(UsageError({"get", "c1", "--tls-key", key.path()}, {"--tls-cert and --tls-key"}));
  EXPECT_TRUE(UsageError({"get", "c1", "--tls-ca", "/nonexistent/ca.pem"},
                         {"--tls-ca: cannot read /nonexistent/ca.pem"}));
  TempFile empty("");
  EXPECT_TRUE(UsageError({"get", "c1", "--tls-ca", empty.path()}, {"--tls-ca", "is empty"}));
}

TEST(CtlArgsTest, Timeout) {
  absl::StatusOr<Invocation> ms = Parse({"get", "c1", "--timeout", "500ms"});
  ASSERT_TRUE(ms.ok());
  EXPECT_EQ(ms->connection.timeout, absl::Milliseconds(500));
  absl::StatusOr<Invocation> seconds = Parse({"get", "c1", "--timeout=3"});
  ASSERT_TRUE(seconds.ok());
  EXPECT_EQ(seconds->connection.timeout, absl::Seconds(3));
  EXPECT_TRUE(
      UsageError({"get", "c1", "--timeout", "soon"}, {"--timeout: 'soon' is not a duration"}));
  EXPECT_TRUE(UsageError({"get", "c1", "--timeout", "0s"}, {"--timeout: must be positive"}));
  EXPECT_TRUE(UsageError({"get", "c1", "--timeout=-1s"}, {"--timeout: must be positive"}));
}

TEST(CtlArgsTest, OutputFormats) {
  absl::StatusOr<Invocation> json = Parse({"get", "c1", "-o", "json"});
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->output, OutputFormat::kJson);
  absl::StatusOr<Invocation> alias = Parse({"--json", "close", "--conn", "c1"});
  ASSERT_TRUE(alias.ok());
  EXPECT_EQ(alias->output, OutputFormat::kJson);
  absl::StatusOr<Invocation> array = Parse({"list", "--output=json-array"});
  ASSERT_TRUE(array.ok());
  EXPECT_EQ(array->output, OutputFormat::kJsonArray);
  // Before send, --json is the global flag; after it, the payload.
  absl::StatusOr<Invocation> send = Parse({"--json", "send", "--conn", "c1", "--json", "[1]"});
  ASSERT_TRUE(send.ok()) << send.status();
  EXPECT_EQ(send->output, OutputFormat::kJson);
  EXPECT_EQ(send->send.payload().json(), "[1]");

  EXPECT_TRUE(UsageError({"get", "c1", "-o", "yaml"}, {"get: --output: 'yaml' is not text, json"}));
  EXPECT_TRUE(UsageError({"get", "c1", "-o", "json-array"}, {"json-array is for list only"}));
  EXPECT_TRUE(UsageError({"get", "c1", "--json", "-o", "text"}, {"--output or --json, not both"}));
  EXPECT_TRUE(UsageError({"get", "c1", "--json=yes"}, {"--json takes no value"}));
}

TEST(CtlArgsTest, FlagSyntaxErrors) {
  EXPECT_TRUE(UsageError({"close", "--conn", "c1", "--bogus"}, {"close: unknown flag --bogus"}));
  EXPECT_TRUE(UsageError({"close", "--conn", "c1", "-x"}, {"close: unexpected argument '-x'"}));
  EXPECT_TRUE(UsageError({"close", "--conn"}, {"close: --conn needs a value (ID"}));
  // A flag where a value should be is a forgotten value, not the value.
  EXPECT_TRUE(UsageError({"close", "--conn", "--all"}, {"--conn needs a value"}));
  EXPECT_TRUE(UsageError({"close", "--all=1"}, {"--all takes no value"}));
  EXPECT_TRUE(UsageError({"close", "--all", "--code", "4000", "--code", "4001"},
                         {"--code given more than once"}));
  EXPECT_TRUE(UsageError({"close", "--all", "extra"}, {"close: unexpected argument 'extra'"}));
  EXPECT_TRUE(UsageError({"--", "close"}, {"'--' before the command"}));
  EXPECT_TRUE(UsageError({"--bogus", "close"}, {"unknown flag --bogus"}));
  // A flag of another command.
  EXPECT_TRUE(UsageError({"list", "--conn", "c1"}, {"list: unknown flag --conn"}));
}

// Connection ids are web-safe base64: they may start with '-' or even "--".
TEST(CtlArgsTest, IdsStartingWithDashes) {
  absl::StatusOr<Invocation> close =
      Parse({"close", "--conn", "-Xk2abcdefghijk", "--conn", "--k2abcdefghijk", "--exclude", "-e",
             "--code", "4000"});
  ASSERT_TRUE(close.ok()) << close.status();
  EXPECT_THAT(close->close.target().connection_ids(),
              ElementsAre("-Xk2abcdefghijk", "--k2abcdefghijk"));
  EXPECT_THAT(close->close.target().exclude_connection_ids(), ElementsAre("-e"));

  absl::StatusOr<Invocation> get = Parse({"get", "-Xk2abcdefghijk"});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->get.connection_id(), "-Xk2abcdefghijk");
  absl::StatusOr<Invocation> after_dashes = Parse({"get", "--", "--k2abcdefghijk"});
  ASSERT_TRUE(after_dashes.ok()) << after_dashes.status();
  EXPECT_EQ(after_dashes->get.connection_id(), "--k2abcdefghijk");
  EXPECT_TRUE(UsageError({"get", "--k2abcdefghijk"},
                         {"unknown flag --k2abcdefghijk", "goes after a lone --"}));

  absl::StatusOr<Invocation> text = Parse({"send", "--conn", "-a", "-1 is a number"});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->send.payload().text(), "-1 is a number");
}

TEST(CtlArgsTest, UnknownFlagSuggestsTheKnownOne) {
  EXPECT_TRUE(
      UsageError({"list", "--user", "u"}, {"unknown flag --user (did you mean --user-id?)"}));
  EXPECT_TRUE(UsageError({"bind", "--all", "--device", "d"}, {"did you mean --set-device?"}));
}

// ---------------------------------------------------------------------------------------------
// Targets.

TEST(CtlArgsTest, EveryTargetFlag) {
  absl::StatusOr<Invocation> invocation =
      Parse({"close", "--conn",  "c1", "--conn=c2", "--user-id",  "u1",        "--group",
             "g1",    "--group", "g2", "--all",     "--function", "chat",      "--function",
             "echo",  "--app",   "a1", "--channel", "ch",         "--exclude", "c3"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  const v1::Target& target = invocation->close.target();
  EXPECT_THAT(target.connection_ids(), ElementsAre("c1", "c2"));
  EXPECT_THAT(target.user_ids(), ElementsAre("u1"));
  EXPECT_THAT(target.groups(), ElementsAre("g1", "g2"));
  EXPECT_TRUE(target.all());
  EXPECT_THAT(target.functions(), ElementsAre("chat", "echo"));
  EXPECT_EQ(target.app_id(), "a1");
  EXPECT_EQ(target.channel(), "ch");
  EXPECT_THAT(target.exclude_connection_ids(), ElementsAre("c3"));
}

TEST(CtlArgsTest, EachSelectorAloneIsATarget) {
  for (const std::vector<std::string>& selector : std::vector<std::vector<std::string>>{
           {"--conn", "c1"}, {"--user-id", "u1"}, {"--group", "g1"}, {"--all"}}) {
    std::vector<std::string> args = {"close"};
    args.insert(args.end(), selector.begin(), selector.end());
    absl::StatusOr<Invocation> invocation = Parse(args);
    EXPECT_TRUE(invocation.ok()) << selector.front() << ": " << invocation.status();
  }
}

TEST(CtlArgsTest, MissingTargetInEveryCommandThatNeedsOne) {
  const std::vector<std::vector<std::string>> commands = {
      {"send", "hi"},
      {"close"},
      {"emit", "--name", "x"},
      {"force-logout"},
      {"join", "--join", "g"},
      {"leave", "--leave", "g"},
      {"bind", "--set-user", "u"},
  };
  for (const std::vector<std::string>& args : commands) {
    EXPECT_TRUE(UsageError(args, {absl::StrCat(args.front(), ": no target: give --conn")}))
        << args.front();
  }
  // Narrowing alone selects nothing.
  EXPECT_TRUE(
      UsageError({"close", "--function", "echo", "--app", "a", "--channel", "c", "--exclude", "x"},
                 {"no target", "only narrow"}));
}

TEST(CtlArgsTest, EmptyTargetValues) {
  for (const char* flag :
       {"--conn", "--user-id", "--group", "--function", "--exclude", "--app", "--channel"}) {
    EXPECT_TRUE(UsageError({"close", "--all", absl::StrCat(flag, "=")},
                           {absl::StrCat(flag, ": empty value")}))
        << flag;
  }
}

// ---------------------------------------------------------------------------------------------
// send

TEST(CtlArgsTest, SendText) {
  absl::StatusOr<Invocation> invocation = Parse({"send", "--conn", "c1", "hello world"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->command, Command::kSend);
  EXPECT_THAT(invocation->send.target().connection_ids(), ElementsAre("c1"));
  EXPECT_EQ(invocation->send.payload().data_case(), v1::Payload::kText);
  EXPECT_EQ(invocation->send.payload().text(), "hello world");

  // After --, words that look like flags are the text.
  absl::StatusOr<Invocation> dashed = Parse({"send", "--all", "--", "--not-a-flag"});
  ASSERT_TRUE(dashed.ok()) << dashed.status();
  EXPECT_EQ(dashed->send.payload().text(), "--not-a-flag");
  absl::StatusOr<Invocation> empty = Parse({"send", "--all", ""});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->send.payload().data_case(), v1::Payload::kText);
}

TEST(CtlArgsTest, SendBinaryFile) {
  const std::string bytes("\x00\x01\xff binary", 10);
  TempFile file(bytes);
  absl::StatusOr<Invocation> invocation =
      Parse({"send", "--user-id", "u1", "--binary-file", file.path()});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->send.payload().data_case(), v1::Payload::kBinary);
  EXPECT_EQ(invocation->send.payload().binary(), bytes);
  EXPECT_TRUE(UsageError({"send", "--all", "--binary-file", "/nonexistent/payload"},
                         {"send: --binary-file: cannot read /nonexistent/payload"}));
}

TEST(CtlArgsTest, SendJson) {
  for (const std::string json : {R"({"a":[1,2,{"b":null}]})", "42", R"("text")", "[]", "true"}) {
    absl::StatusOr<Invocation> invocation = Parse({"send", "--group", "g", "--json", json});
    ASSERT_TRUE(invocation.ok()) << json << ": " << invocation.status();
    EXPECT_EQ(invocation->send.payload().data_case(), v1::Payload::kJson);
    EXPECT_EQ(invocation->send.payload().json(), json);  // Sent as written, not re-encoded.
  }
  EXPECT_TRUE(UsageError({"send", "--all", "--json", "{bad"}, {"send: --json: not valid JSON"}));
  EXPECT_TRUE(UsageError({"send", "--all", "--json", ""}, {"--json: not valid JSON"}));
  EXPECT_TRUE(
      UsageError({"send", "--all", "--json"}, {"in send it is the JSON payload", "--output=json"}));
}

TEST(CtlArgsTest, SendNeedsExactlyOnePayload) {
  TempFile file("x");
  EXPECT_TRUE(UsageError({"send", "--all"}, {"send: nothing to send"}));
  EXPECT_TRUE(UsageError({"send", "--all", "hi", "--json", "1"}, {"only one of TEXT"}));
  EXPECT_TRUE(UsageError({"send", "--all", "--binary-file", file.path(), "--json", "1"},
                         {"only one of TEXT"}));
  EXPECT_TRUE(
      UsageError({"send", "--all", "hello", "world"}, {"unexpected argument 'world'", "quote"}));
}

// ---------------------------------------------------------------------------------------------
// close

TEST(CtlArgsTest, Close) {
  absl::StatusOr<Invocation> invocation =
      Parse({"close", "--conn", "c1", "--code", "4001", "--reason", "kicked"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->command, Command::kClose);
  EXPECT_EQ(invocation->close.code(), 4001);
  EXPECT_EQ(invocation->close.reason(), "kicked");

  absl::StatusOr<Invocation> defaults = Parse({"close", "--conn", "c1"});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->close.code(), 0);  // The gateway's 1000.
  for (const char* code : {"1000", "1003", "1007", "1014", "3000", "4999"}) {
    EXPECT_TRUE(Parse({"close", "--all", "--code", code}).ok()) << code;
  }
  absl::StatusOr<Invocation> longest = Parse({"close", "--all", "--reason", std::string(123, 'r')});
  EXPECT_TRUE(longest.ok());
}

TEST(CtlArgsTest, BadCloseCodesAndReasons) {
  EXPECT_TRUE(
      UsageError({"close", "--all", "--code", "abc"}, {"close: --code: 'abc' is not a number"}));
  EXPECT_TRUE(UsageError({"close", "--all", "--code", "40o0"}, {"is not a number"}));
  for (const char* code : {"0", "999", "1004", "1005", "1006", "1015", "2999", "5000", "-1"}) {
    EXPECT_TRUE(UsageError({"close", "--all", absl::StrCat("--code=", code)},
                           {absl::StrCat("--code: ", code, " is not a close code")}))
        << code;
  }
  EXPECT_TRUE(UsageError({"close", "--all", "--reason", std::string(124, 'r')},
                         {"close: --reason: at most 123 bytes, got 124"}));
}

// ---------------------------------------------------------------------------------------------
// emit, force-logout

TEST(CtlArgsTest, Emit) {
  absl::StatusOr<Invocation> plain =
      Parse({"emit", "--user-id", "u1", "--name", "invalidToken", "--data", R"({"why":"x"})"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->command, Command::kEmit);
  EXPECT_EQ(plain->emit.name(), "invalidToken");
  EXPECT_EQ(plain->emit.data_json(), R"({"why":"x"})");
  EXPECT_FALSE(plain->emit.close());

  absl::StatusOr<Invocation> closing = Parse(
      {"emit", "--conn", "c1", "--name", "bye", "--close", "--code", "4000", "--reason", "r"});
  ASSERT_TRUE(closing.ok()) << closing.status();
  EXPECT_TRUE(closing->emit.close());
  EXPECT_EQ(closing->emit.code(), 4000);
  EXPECT_EQ(closing->emit.reason(), "r");
  EXPECT_EQ(closing->emit.data_json(), "");  // null
}

TEST(CtlArgsTest, BadEmit) {
  EXPECT_TRUE(UsageError({"emit", "--all"}, {"emit: --name is required"}));
  EXPECT_TRUE(UsageError({"emit", "--all", "--name="}, {"--name: empty value"}));
  EXPECT_TRUE(UsageError({"emit", "--all", "--name", "n", "--data", "{"},
                         {"emit: --data: not valid JSON"}));
  EXPECT_TRUE(
      UsageError({"emit", "--all", "--name", "n", "--code", "4000"}, {"--code needs --close"}));
  EXPECT_TRUE(
      UsageError({"emit", "--all", "--name", "n", "--reason", "r"}, {"--reason needs --close"}));
  EXPECT_TRUE(UsageError({"emit", "--all", "--name", "n", "--close", "--code", "1005"},
                         {"1005 is not a close code"}));
}

TEST(CtlArgsTest, ForceLogoutIsEmitWithClose) {
  absl::StatusOr<Invocation> invocation = Parse(
      {"force-logout", "--user-id", "u1", "--data", R"({"reason":"banned"})", "--code", "4003"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->command, Command::kForceLogout);
  EXPECT_EQ(invocation->emit.name(), "forceLogout");
  EXPECT_TRUE(invocation->emit.close());
  EXPECT_EQ(invocation->emit.code(), 4003);
  EXPECT_EQ(invocation->emit.data_json(), R"({"reason":"banned"})");
  EXPECT_THAT(invocation->emit.target().user_ids(), ElementsAre("u1"));

  EXPECT_TRUE(UsageError({"force-logout", "--all", "--name", "x"}, {"unknown flag --name"}));
  EXPECT_TRUE(UsageError({"force-logout", "--all", "--code", "1"}, {"1 is not a close code"}));
  EXPECT_TRUE(UsageError({"force-logout", "--all", "--data", "nope"}, {"--data: not valid JSON"}));
}

// ---------------------------------------------------------------------------------------------
// join, leave, bind

TEST(CtlArgsTest, JoinAndLeave) {
  // --group picks the targets (members of "lobby"); --join names the groups to add them to.
  absl::StatusOr<Invocation> join =
      Parse({"join", "--group", "lobby", "--join", "room-1", "--join", "room-2"});
  ASSERT_TRUE(join.ok()) << join.status();
  EXPECT_EQ(join->command, Command::kJoin);
  EXPECT_THAT(join->groups.target().groups(), ElementsAre("lobby"));
  EXPECT_THAT(join->groups.groups(), ElementsAre("room-1", "room-2"));

  absl::StatusOr<Invocation> leave = Parse({"leave", "--conn", "c1", "--leave", "room-1"});
  ASSERT_TRUE(leave.ok()) << leave.status();
  EXPECT_EQ(leave->command, Command::kLeave);
  EXPECT_THAT(leave->groups.groups(), ElementsAre("room-1"));

  EXPECT_TRUE(UsageError({"join", "--conn", "c1"}, {"join: --join GROUP is required"}));
  EXPECT_TRUE(UsageError({"leave", "--conn", "c1"}, {"leave: --leave GROUP is required"}));
  EXPECT_TRUE(UsageError({"join", "--conn", "c1", "--join="}, {"--join: empty value"}));
  EXPECT_TRUE(UsageError({"leave", "--conn", "c1", "--join", "g"}, {"leave: unknown flag --join"}));
}

TEST(CtlArgsTest, BindSetsOnlyTheGivenFields) {
  absl::StatusOr<Invocation> invocation =
      Parse({"bind", "--conn", "c1", "--set-user", "alice", "--set-channel", "", "--set-meta",
             "plan=pro", "--set-meta", "old=", "--set-meta", "url=a=b"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  const v1::Identity& identity = invocation->bind.identity();
  EXPECT_TRUE(identity.has_user_id());
  EXPECT_EQ(identity.user_id(), "alice");
  EXPECT_TRUE(identity.has_channel());  // Set to "": clears it.
  EXPECT_EQ(identity.channel(), "");
  EXPECT_FALSE(identity.has_app_id());
  EXPECT_FALSE(identity.has_device_id());
  EXPECT_THAT(identity.metadata(),
              UnorderedElementsAre(Pair("plan", "pro"), Pair("old", ""), Pair("url", "a=b")));

  absl::StatusOr<Invocation> others =
      Parse({"bind", "--user-id", "u", "--set-app", "app", "--set-device", "dev"});
  ASSERT_TRUE(others.ok());
  EXPECT_EQ(others->bind.identity().app_id(), "app");
  EXPECT_EQ(others->bind.identity().device_id(), "dev");
}

TEST(CtlArgsTest, BadBind) {
  EXPECT_TRUE(UsageError({"bind", "--conn", "c1"}, {"bind: nothing to change", "--set-user"}));
  // --app narrows the target (as everywhere); it does not set anything.
  EXPECT_TRUE(
      UsageError({"bind", "--conn", "c1", "--app", "a"}, {"nothing to change", "--set-app"}));
  EXPECT_TRUE(UsageError({"bind", "--all", "--set-meta", "novalue"},
                         {"--set-meta: 'novalue' is not KEY=VALUE"}));
  EXPECT_TRUE(UsageError({"bind", "--all", "--set-meta", "=v"}, {"is not KEY=VALUE"}));
  EXPECT_TRUE(UsageError({"bind", "--all", "--set-meta", "k=1", "--set-meta", "k=2"},
                         {"--set-meta: key 'k' given more than once"}));
  EXPECT_TRUE(UsageError({"bind", "--all", "--set-user", "a", "--set-user", "b"},
                         {"--set-user given more than once"}));
}

// ---------------------------------------------------------------------------------------------
// get, list, sign-url

TEST(CtlArgsTest, Get) {
  absl::StatusOr<Invocation> invocation = Parse({"get", "Abc123", "--json"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->command, Command::kGet);
  EXPECT_EQ(invocation->get.connection_id(), "Abc123");
  EXPECT_EQ(invocation->output, OutputFormat::kJson);

  EXPECT_TRUE(UsageError({"get"}, {"get: the connection ID is required"}));
  EXPECT_TRUE(UsageError({"get", ""}, {"get: empty connection ID"}));
  EXPECT_TRUE(UsageError({"get", "a", "b"}, {"get: unexpected argument 'b'"}));
  EXPECT_TRUE(UsageError({"get", "--conn", "a"}, {"get: unknown flag --conn"}));
}

TEST(CtlArgsTest, List) {
  absl::StatusOr<Invocation> everything = Parse({"list"});
  ASSERT_TRUE(everything.ok()) << everything.status();
  EXPECT_EQ(everything->command, Command::kList);
  EXPECT_EQ(everything->list.ByteSizeLong(), 0u);  // No filter, default page size.
  EXPECT_FALSE(everything->list_all);

  absl::StatusOr<Invocation> filtered =
      Parse({"list", "--function", "chat", "--user-id", "u1", "--group", "g", "--app", "a",
             "--channel", "c", "--page-size", "50", "--page-token", "t", "--all"});
  ASSERT_TRUE(filtered.ok()) << filtered.status();
  const v1::ListConnectionsRequest& request = filtered->list;
  EXPECT_EQ(request.function(), "chat");
  EXPECT_EQ(request.user_id(), "u1");
  EXPECT_EQ(request.group(), "g");
  EXPECT_EQ(request.app_id(), "a");
  EXPECT_EQ(request.channel(), "c");
  EXPECT_EQ(request.page_size(), 50);
  EXPECT_EQ(request.page_token(), "t");
  EXPECT_TRUE(filtered->list_all);
}

TEST(CtlArgsTest, BadList) {
  for (const char* size : {"0", "1001", "ten", "-5"}) {
    EXPECT_TRUE(UsageError(
        {"list", absl::StrCat("--page-size=", size)},
        {absl::StrCat("list: --page-size: '", size, "' is not a number from 1 to 1000")}))
        << size;
  }
  EXPECT_TRUE(UsageError({"list", "--function="}, {"list: --function: empty value"}));
  EXPECT_TRUE(UsageError({"list", "--function", "a", "--function", "b"}, {"given more than once"}));
  EXPECT_TRUE(UsageError({"list", "chat"}, {"list: unexpected argument 'chat'"}));
}

TEST(CtlArgsTest, SignUrl) {
  absl::StatusOr<Invocation> invocation =
      Parse({"sign-url", "--function", "chat", "--query", "room=a", "--query", "x=", "--user-id",
             "alice", "--ttl", "10m"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->command, Command::kSignUrl);
  const v1::SignUrlRequest& request = invocation->sign_url;
  EXPECT_EQ(request.function(), "chat");
  EXPECT_THAT(request.query(), UnorderedElementsAre(Pair("room", "a"), Pair("x", "")));
  EXPECT_EQ(request.user_id(), "alice");
  EXPECT_EQ(request.ttl_seconds(), 600u);

  absl::StatusOr<Invocation> seconds = Parse({"sign-url", "--function", "f", "--ttl", "90"});
  ASSERT_TRUE(seconds.ok());
  EXPECT_EQ(seconds->sign_url.ttl_seconds(), 90u);
  absl::StatusOr<Invocation> defaults = Parse({"sign-url", "--function", "f"});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->sign_url.ttl_seconds(), 0u);  // The gateway's 3600.
}

TEST(CtlArgsTest, BadSignUrl) {
  EXPECT_TRUE(UsageError({"sign-url"}, {"sign-url: --function is required"}));
  EXPECT_TRUE(UsageError({"sign-url", "--function="}, {"--function: empty value"}));
  EXPECT_TRUE(UsageError({"sign-url", "--function", "f", "--query", "room"},
                         {"--query: 'room' is not KEY=VALUE"}));
  EXPECT_TRUE(UsageError({"sign-url", "--function", "f", "--query", "a=1", "--query", "a=2"},
                         {"--query: key 'a' given more than once"}));
  EXPECT_TRUE(UsageError({"sign-url", "--function", "f", "--ttl", "1500ms"},
                         {"--ttl: '1500ms' is not a whole number of seconds"}));
  EXPECT_TRUE(
      UsageError({"sign-url", "--function", "f", "--ttl", "0"}, {"--ttl: must be positive"}));
  EXPECT_TRUE(UsageError({"sign-url", "--function", "f", "--ttl", "forever"}, {"not a duration"}));
  EXPECT_TRUE(UsageError({"sign-url", "--function", "f", "--ttl", "2000000h"}, {"too long"}));
  EXPECT_TRUE(
      UsageError({"sign-url", "--function", "f", "--user-id="}, {"--user-id: empty value"}));
}

}  // namespace
}  // namespace fngate::ctl
