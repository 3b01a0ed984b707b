#include "gateway/ctl/ctl_args.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gateway/outbound.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace fngate::ctl {
namespace {

// ---------------------------------------------------------------------------------------------
// Flag and command tables: the parser and the help text both read them.

enum class Kind {
  kBool,      // --all
  kValue,     // --code 4000 or --code=4000, at most once
  kRepeated,  // --conn a --conn b
};

struct Flag {
  const char* name;
  Kind kind;
  const char* value_name;  // "ID"; unused for kBool
  const char* help;
};

// Every command takes these.
const std::vector<Flag>& GlobalFlags() {
  static const std::vector<Flag> flags = {
      {"control", Kind::kValue, "ADDR",
       "the gateway's control address (default: env FNGATE_CONTROL, else 127.0.0.1:8081)"},
      {"token", Kind::kValue, "TOKEN",
       "bearer token (default: env FNGATE_TOKEN, which like --token-file stays out of ps)"},
      {"token-file", Kind::kValue, "PATH", "read the bearer token from a file"},
      {"tls-ca", Kind::kValue, "PATH", "PEM CA bundle that signed the gateway's certificate"},
      {"tls-cert", Kind::kValue, "PATH", "PEM client certificate (mutual TLS; with --tls-key)"},
      {"tls-key", Kind::kValue, "PATH", "PEM client private key (mutual TLS; with --tls-cert)"},
      {"tls-server-name", Kind::kValue, "NAME",
       "name expected in the gateway's certificate (default: the address's host)"},
      {"timeout", Kind::kValue, "DURATION", "deadline of each call: 10s (default), 500ms, 1m"},
      {"output", Kind::kValue, "FORMAT",
       "text (default) or json; list also takes json-array. Short: -o"},
      {"json", Kind::kBool, "", "same as --output=json (in send, --json is the payload)"},
      {"help", Kind::kBool, "", "this help. Short: -h"},
  };
  return flags;
}

// Commands that act on a Target take these.
const std::vector<Flag>& TargetFlags() {
  static const std::vector<Flag> flags = {
      {"conn", Kind::kRepeated, "ID", "a connection id"},
      {"user-id", Kind::kRepeated, "ID", "every connection bound to this user id"},
      {"group", Kind::kRepeated, "NAME", "every member of this group"},
      {"all", Kind::kBool, "", "every connection on the gateway"},
      {"function", Kind::kRepeated, "NAME", "narrow: only connections of this function"},
      {"app", Kind::kValue, "ID", "narrow: only connections with this app id"},
      {"channel", Kind::kValue, "NAME", "narrow: only connections with this channel"},
      {"exclude", Kind::kRepeated, "ID", "narrow: never this connection id"},
  };
  return flags;
}

struct CommandSpec {
  const char* name;
  Command command;
  bool target;        // Takes TargetFlags().
  const char* usage;  // The synopsis after "fngatectl NAME".
  int max_operands;   // Positional arguments it takes (TEXT, ID).
  const char* summary;
  std::vector<Flag> flags;
};

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> commands = {
      {"send",
       Command::kSend,
       true,
       "TARGET (TEXT | --binary-file PATH | --json JSON)",
       1,
       "Send a message to the targets: TEXT as a text frame, a file's bytes as a binary\n"
       "frame, or a JSON value as a text frame. Prints how many connections took it and\n"
       "which of the named ids were gone or overflowing.",
       {{"binary-file", Kind::kValue, "PATH", "send the file's bytes as a binary frame"},
        {"json", Kind::kValue, "JSON", "send this JSON value (checked here) as a text frame"}}},
      {"close",
       Command::kClose,
       true,
       "TARGET [--code N] [--reason TEXT]",
       0,
       "Close the targets, after what is already queued to them.",
       {{"code", Kind::kValue, "N", "close code: 1000 (default), 1001-1003, 1007-1014, 3000-4999"},
        {"reason", Kind::kValue, "TEXT", "close reason, at most 123 bytes"}}},
      {"emit",
       Command::kEmit,
       true,
       "TARGET --name NAME [--data JSON]\n"
       "        [--close [--code N] [--reason TEXT]]",
       0,
       "Send a framework event (name and JSON data) to the targets, optionally closing\n"
       "them after it.",
       {{"name", Kind::kValue, "NAME", "event name (required): letters, digits, _ - . :"},
        {"data", Kind::kValue, "JSON", "event data, a JSON value (default null)"},
        {"close", Kind::kBool, "", "close each target after the event"},
        {"code", Kind::kValue, "N", "with --close: the close code (default 1000)"},
        {"reason", Kind::kValue, "TEXT", "with --close: the close reason (at most 123 bytes)"}}},
      {"force-logout",
       Command::kForceLogout,
       true,
       "TARGET [--data JSON] [--code N] [--reason TEXT]",
       0,
       "Emit the forceLogout event to the targets, then close them.",
       {{"data", Kind::kValue, "JSON", "event data, a JSON value (default null)"},
        {"code", Kind::kValue, "N", "close code (default 1000)"},
        {"reason", Kind::kValue, "TEXT", "close reason (at most 123 bytes)"}}},
      {"join",
       Command::kJoin,
       true,
       "TARGET --join GROUP...",
       0,
       "Add the targets to groups.",
       {{"join", Kind::kRepeated, "GROUP", "group to join (required; repeatable)"}}},
      {"leave",
       Command::kLeave,
       true,
       "TARGET --leave GROUP...",
       0,
       "Take the targets out of groups.",
       {{"leave", Kind::kRepeated, "GROUP", "group to leave (required; repeatable)"}}},
      {"bind",
       Command::kBind,
       true,
       "TARGET [--set-user ID] [--set-app ID] [--set-channel NAME]\n"
       "        [--set-device ID] [--set-meta KEY=VALUE]...",
       0,
       "Change the identity of the targets. Only the --set-* flags given change; an\n"
       "empty value clears the field.",
       {{"set-user", Kind::kValue, "ID", "bind this user id"},
        {"set-app", Kind::kValue, "ID", "set the app id"},
        {"set-channel", Kind::kValue, "NAME", "set the channel"},
        {"set-device", Kind::kValue, "ID", "set the device id"},
        {"set-meta", Kind::kRepeated, "KEY=VALUE",
         "merge into the metadata; KEY= removes the key (repeatable)"}}},
      {"get", Command::kGet, false, "ID", 1, "Show one connection of the online table.", {}},
      {"list",
       Command::kList,
       false,
       "[--function NAME] [--user-id ID] [--group NAME] [--app ID]\n"
       "        [--channel NAME] [--page-size N] [--page-token TOKEN] [--all]",
       0,
       "List the online table, ordered by connection id: one page, or every page with\n"
       "--all. Filters combine.",
       {{"function", Kind::kValue, "NAME", "only connections of this function"},
        {"user-id", Kind::kValue, "ID", "only connections bound to this user id"},
        {"group", Kind::kValue, "NAME", "only members of this group"},
        {"app", Kind::kValue, "ID", "only connections with this app id"},
        {"channel", Kind::kValue, "NAME", "only connections with this channel"},
        {"page-size", Kind::kValue, "N", "rows per page, 1-1000 (default 100)"},
        {"page-token", Kind::kValue, "TOKEN", "continue after a previous page"},
        {"all", Kind::kBool, "", "follow the pages to the end"}}},
      {"sign-url",
       Command::kSignUrl,
       false,
       "--function NAME [--query KEY=VALUE]... [--user-id ID]\n"
       "        [--ttl DURATION]",
       0,
       "Mint a signed client URL for a function; prints the URL.",
       {{"function", Kind::kValue, "NAME", "the function (required)"},
        {"query", Kind::kRepeated, "KEY=VALUE", "query parameter, signed (repeatable)"},
        {"user-id", Kind::kValue, "ID", "user id bound to the connection at connect"},
        {"ttl", Kind::kValue, "DURATION", "time to live: 1h (default), 90s, 3600"}}},
  };
  return commands;
}

const CommandSpec* FindCommand(absl::string_view name) {
  for (const CommandSpec& spec : Commands()) {
    if (name == spec.name) return &spec;
  }
  return nullptr;
}

std::string CommandNames() {
  std::vector<std::string> names;
  for (const CommandSpec& spec : Commands()) names.push_back(spec.name);
  return absl::StrJoin(names, ", ");
}

// ---------------------------------------------------------------------------------------------
// Help text.

// "  --conn ID   help", the help wrapped to 80 columns in its own column.
std::string FlagLine(const Flag& flag) {
  constexpr size_t kColumn = 28;
  constexpr size_t kWidth = 80;
  std::string left = absl::StrCat("  --", flag.name);
  if (flag.kind != Kind::kBool) absl::StrAppend(&left, " ", flag.value_name);
  std::string text = left;
  size_t line_start = 0;
  if (left.size() + 2 > kColumn) {
    absl::StrAppend(&text, "\n");
    line_start = text.size();
  }
  text.resize(line_start + kColumn, ' ');
  bool first_word = true;
  for (absl::string_view word : absl::StrSplit(flag.help, ' ', absl::SkipEmpty())) {
    if (!first_word && text.size() - line_start + 1 + word.size() > kWidth) {
      absl::StrAppend(&text, "\n");
      line_start = text.size();
      text.resize(line_start + kColumn, ' ');
      first_word = true;
    }
    absl::StrAppend(&text, first_word ? "" : " ", word);
    first_word = false;
  }
  return absl::StrCat(text, "\n");
}

std::string Synopsis(const CommandSpec& spec) {
  return absl::StrCat("fngatectl ", spec.name, " ", spec.usage);
}

std::string CommandHelp(const CommandSpec& spec) {
  std::string text = absl::StrCat("usage: ", Synopsis(spec), "\n\n", spec.summary, "\n");
  if (spec.target) {
    absl::StrAppend(&text,
                    "\nTARGET: the union of --conn, --user-id, --group and --all (at least one),\n"
                    "narrowed by --function, --app, --channel and --exclude:\n");
    for (const Flag& flag : TargetFlags()) absl::StrAppend(&text, FlagLine(flag));
  }
  if (!spec.flags.empty()) {
    absl::StrAppend(&text, "\nflags:\n");
    for (const Flag& flag : spec.flags) absl::StrAppend(&text, FlagLine(flag));
  }
  absl::StrAppend(&text, "\nglobal flags:\n");
  for (const Flag& flag : GlobalFlags()) {
    if (spec.command == Command::kSend && std::strcmp(flag.name, "json") == 0) continue;
    absl::StrAppend(&text, FlagLine(flag));
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// Generic parsing: argv into flag values and operands, checked against the tables.

absl::Status UsageError(absl::string_view where, absl::string_view problem) {
  return absl::InvalidArgumentError(where.empty() ? std::string(problem)
                                                  : absl::StrCat(where, ": ", problem));
}

// Where ParseFlags records the global --json.
constexpr char kJsonOutput[] = " json-output";

struct ParsedArgs {
  std::map<std::string, std::vector<std::string>, std::less<>> values;
  std::vector<std::string> operands;

  bool Has(absl::string_view name) const { return values.find(name) != values.end(); }
  std::optional<std::string> Get(absl::string_view name) const {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second.front();
  }
  std::vector<std::string> GetAll(absl::string_view name) const {
    auto it = values.find(name);
    return it == values.end() ? std::vector<std::string>{} : it->second;
  }
};

// Every flag `spec` takes, its own first (null: before the command, the global ones).
std::vector<const Flag*> FlagsOf(const CommandSpec* spec) {
  std::vector<const Flag*> flags;
  if (spec != nullptr) {
    for (const Flag& flag : spec->flags) flags.push_back(&flag);
    if (spec->target) {
      for (const Flag& flag : TargetFlags()) flags.push_back(&flag);
    }
  }
  for (const Flag& flag : GlobalFlags()) flags.push_back(&flag);
  return flags;
}

// The first flag named `name`: in send, its own --json (the payload) hides the global one.
const Flag* FindFlag(const CommandSpec* spec, absl::string_view name) {
  for (const Flag* flag : FlagsOf(spec)) {
    if (name == flag->name) return flag;
  }
  return nullptr;
}

// "unknown flag --user (did you mean --user-id?)": a known flag that starts or ends with it.
std::string UnknownFlag(const CommandSpec* spec, absl::string_view name) {
  std::string message = absl::StrCat("unknown flag --", name);
  for (const Flag* flag : FlagsOf(spec)) {
    if (!name.empty() && (absl::StartsWith(flag->name, name) || absl::EndsWith(flag->name, name))) {
      return absl::StrCat(message, " (did you mean --", flag->name, "?)");
    }
  }
  if (spec != nullptr && spec->max_operands > 0) {
    absl::StrAppend(&message, " (a TEXT or ID that starts with -- goes after a lone --)");
  }
  return message;
}

// Connection ids are web-safe base64, so one in 64 starts with '-' and one in 4096 with "--":
// a word is a flag only if it is "-o", "-h" or starts with "--". Any other word starting with
// '-' is a value or an operand ("-5", "-Xk2...").
bool IsFlagWord(absl::string_view arg) {
  if (absl::StartsWith(arg, "--")) return arg.size() > 2;
  return arg == "-o" || arg == "-h";
}

// The flag name of a flag word: "--code=4000" -> "code", "-o" -> "output".
std::string FlagName(absl::string_view arg) {
  if (arg == "-o") return "output";
  if (arg == "-h") return "help";
  absl::string_view body = arg.substr(2);
  return std::string(body.substr(0, body.find('=')));
}

// Whether `arg` is a flag `spec` takes: after a flag that needs a value, such a word means the
// value was forgotten; any other word is the value, even "--odd-id".
bool IsKnownFlag(const CommandSpec* spec, absl::string_view arg) {
  return IsFlagWord(arg) && FindFlag(spec, FlagName(arg)) != nullptr;
}

// Parses args[begin..] for `spec` (null: the words before the command, which stop at the first
// operand; `*end` is then its index).
absl::Status ParseFlags(const std::vector<std::string>& args, size_t begin, const CommandSpec* spec,
                        ParsedArgs& parsed, size_t* end) {
  const std::string where = spec == nullptr ? "" : spec->name;
  bool operands_only = false;
  size_t i = begin;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!operands_only && arg == "--") {
      if (spec == nullptr) return UsageError(where, "'--' before the command");
      operands_only = true;
      continue;
    }
    if (operands_only || !IsFlagWord(arg)) {
      if (spec == nullptr) break;  // The command name.
      parsed.operands.push_back(arg);
      continue;
    }
    const std::string name = FlagName(arg);
    std::optional<std::string> value;
    if (size_t eq = arg.find('='); absl::StartsWith(arg, "--") && eq != std::string::npos) {
      value = arg.substr(eq + 1);
    }
    const Flag* flag = FindFlag(spec, name);
    if (flag == nullptr) return UsageError(where, UnknownFlag(spec, name));
    if (flag->kind == Kind::kBool) {
      if (value.has_value()) return UsageError(where, absl::StrCat("--", name, " takes no value"));
      // The global --json (output format) is kept apart from send's --json (payload).
      parsed.values[name == "json" ? kJsonOutput : name] = {"true"};
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size() || IsKnownFlag(spec, args[i + 1])) {
        if (spec != nullptr && spec->command == Command::kSend && name == "json") {
          return UsageError(where,
                            "--json needs a value: in send it is the JSON payload (for "
                            "JSON output use --output=json)");
        }
        return UsageError(where,
                          absl::StrCat("--", name, " needs a value (", flag->value_name, ")"));
      }
      value = args[++i];
    }
    std::vector<std::string>& values = parsed.values[name];
    if (flag->kind == Kind::kValue && !values.empty()) {
      return UsageError(where, absl::StrCat("--", name, " given more than once"));
    }
    values.push_back(*std::move(value));
  }
  if (end != nullptr) *end = i;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Values.

absl::StatusOr<std::string> ReadFile(const std::string& where, const std::string& flag,
                                     const std::string& path) {
  if (path.empty()) return UsageError(where, absl::StrCat("--", flag, ": empty path"));
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return UsageError(where,
                      absl::StrCat("--", flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return UsageError(where, absl::StrCat("--", flag, ": cannot read ", path));
  return contents.str();
}

absl::Status CheckJson(const std::string& where, const std::string& flag, const std::string& json) {
  google::protobuf::Value value;
  google::protobuf::util::Status status = google::protobuf::util::JsonStringToMessage(json, &value);
  if (!status.ok()) {
    // The parser's message may go on with a copy of the input and a caret: keep its first line.
    std::string message(status.message());
    message = message.substr(0, message.find('\n'));
    return UsageError(where, absl::StrCat("--", flag, ": not valid JSON: ", message));
  }
  return absl::OkStatus();
}

// "4000" -> 4000, checked against the codes a server may send.
absl::StatusOr<int> ParseCloseCode(const std::string& where, const std::string& text) {
  int code = 0;
  if (!absl::SimpleAtoi(text, &code)) {
    return UsageError(where, absl::StrCat("--code: '", text, "' is not a number"));
  }
  if (!gateway::IsSendableCloseCode(code)) {
    return UsageError(where, absl::StrCat("--code: ", code,
                                          " is not a close code a server may send (1000-1003, "
                                          "1007-1014, 3000-4999)"));
  }
  return code;
}

absl::Status CheckReason(const std::string& where, const std::string& reason) {
  if (reason.size() > gateway::kMaxCloseReasonBytes) {
    return UsageError(where, absl::StrCat("--reason: at most ", gateway::kMaxCloseReasonBytes,
                                          " bytes, got ", reason.size()));
  }
  return absl::OkStatus();
}

// "90s", "1m30s", "500ms", or a plain number of seconds ("90").
absl::StatusOr<absl::Duration> ParseDurationFlag(const std::string& where, const std::string& flag,
                                                 const std::string& text) {
  absl::Duration duration;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(text, &seconds)) {
    duration = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &duration)) {
    return UsageError(where, absl::StrCat("--", flag, ": '", text,
                                          "' is not a duration (like 30s, 500ms, 2m, 1h)"));
  }
  if (duration <= absl::ZeroDuration()) {
    return UsageError(where, absl::StrCat("--", flag, ": must be positive, got '", text, "'"));
  }
  return duration;
}

// KEY=VALUE pairs into `map`; a key given twice is a mistake, not "last one wins".
absl::Status ParsePairs(const std::string& where, const std::string& flag,
                        const std::vector<std::string>& pairs,
                        google::protobuf::Map<std::string, std::string>* map) {
  for (const std::string& pair : pairs) {
    size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return UsageError(where, absl::StrCat("--", flag, ": '", pair, "' is not KEY=VALUE"));
    }
    std::string key = pair.substr(0, eq);
    if (map->count(key) > 0) {
      return UsageError(where, absl::StrCat("--", flag, ": key '", key, "' given more than once"));
    }
    (*map)[key] = pair.substr(eq + 1);
  }
  return absl::OkStatus();
}

// Values that name something (ids, groups, functions) must not be empty.
absl::Status CheckNotEmpty(const std::string& where, const std::string& flag,
                           const std::vector<std::string>& values) {
  for (const std::string& value : values) {
    if (value.empty()) return UsageError(where, absl::StrCat("--", flag, ": empty value"));
  }
  return absl::OkStatus();
}

template <typename RepeatedField>
absl::Status AddAll(const std::string& where, const std::string& flag, const ParsedArgs& parsed,
                    RepeatedField* field) {
  std::vector<std::string> values = parsed.GetAll(flag);
  if (absl::Status s = CheckNotEmpty(where, flag, values); !s.ok()) return s;
  for (std::string& value : values) field->Add(std::move(value));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Global flags and the pieces of each request.

absl::Status BuildConnection(const std::string& where, const ParsedArgs& parsed,
                             const Environment& env, Invocation& invocation) {
  ConnectionOptions& connection = invocation.connection;
  connection.address = parsed.Get("control").value_or(env.control.value_or(kDefaultControlAddress));
  if (connection.address.empty()) {
    return UsageError(where, parsed.Has("control") ? "--control: empty address"
                                                   : "FNGATE_CONTROL is set but empty");
  }

  if (parsed.Has("token") && parsed.Has("token-file")) {
    return UsageError(where, "give --token or --token-file, not both");
  }
  std::string token_source = "FNGATE_TOKEN";
  if (std::optional<std::string> token = parsed.Get("token")) {
    connection.token = *token;
    token_source = "--token";
    if (token->empty()) return UsageError(where, "--token: empty token");
  } else if (std::optional<std::string> path = parsed.Get("token-file")) {
    absl::StatusOr<std::string> contents = ReadFile(where, "token-file", *path);
    if (!contents.ok()) return contents.status();
    // Files usually end with a newline; it is not part of the token.
    connection.token = std::string(absl::StripAsciiWhitespace(*contents));
    token_source = "--token-file";
    if (connection.token.empty())
      return UsageError(where, absl::StrCat("--token-file: ", *path, " is empty"));
  } else if (env.token.has_value()) {
    connection.token = *env.token;
  }
  for (char c : connection.token) {
    if (c < 0x21 || c > 0x7e) {
      return UsageError(
          where,
          absl::StrCat(token_source, ": the token may hold only printable ASCII without spaces"));
    }
  }

  struct TlsFile {
    const char* flag;
    std::string* pem;
  };
  for (TlsFile file : {TlsFile{"tls-ca", &connection.tls_root_certs},
                       TlsFile{"tls-cert", &connection.tls_cert_chain},
                       TlsFile{"tls-key", &connection.tls_private_key}}) {
    std::optional<std::string> path = parsed.Get(file.flag);
    if (!path.has_value()) continue;
    absl::StatusOr<std::string> contents = ReadFile(where, file.flag, *path);
    if (!contents.ok()) return contents.status();
    if (contents->empty())
      return UsageError(where, absl::StrCat("--", file.flag, ": ", *path, " is empty"));
    *file.pem = *std::move(contents);
    connection.tls = true;
  }
  if (parsed.Has("tls-cert") != parsed.Has("tls-key")) {
    return UsageError(where, "--tls-cert and --tls-key go together (mutual TLS)");
  }
  if (std::optional<std::string> name = parsed.Get("tls-server-name")) {
    if (name->empty()) return UsageError(where, "--tls-server-name: empty value");
    connection.tls_server_name = *name;
    connection.tls = true;
  }

  if (std::optional<std::string> timeout = parsed.Get("timeout")) {
    absl::StatusOr<absl::Duration> duration = ParseDurationFlag(where, "timeout", *timeout);
    if (!duration.ok()) return duration.status();
    connection.timeout = *duration;
  }
  return absl::OkStatus();
}

absl::Status BuildOutput(const std::string& where, Command command, const ParsedArgs& parsed,
                         Invocation& invocation) {
  const bool json_alias = parsed.Has(kJsonOutput);
  std::optional<std::string> output = parsed.Get("output");
  if (json_alias && output.has_value())
    return UsageError(where, "give --output or --json, not both");
  if (json_alias) output = "json";
  if (!output.has_value() || *output == "text") {
    invocation.output = OutputFormat::kText;
  } else if (*output == "json") {
    invocation.output = OutputFormat::kJson;
  } else if (*output == "json-array" && command == Command::kList) {
    invocation.output = OutputFormat::kJsonArray;
  } else if (*output == "json-array") {
    return UsageError(where, "--output: json-array is for list only; use json");
  } else {
    return UsageError(where, absl::StrCat("--output: '", *output, "' is not text, json",
                                          command == Command::kList ? " or json-array" : ""));
  }
  return absl::OkStatus();
}

absl::Status BuildTarget(const std::string& where, const ParsedArgs& parsed, v1::Target* target) {
  if (absl::Status s = AddAll(where, "conn", parsed, target->mutable_connection_ids()); !s.ok())
    return s;
  if (absl::Status s = AddAll(where, "user-id", parsed, target->mutable_user_ids()); !s.ok())
    return s;
  if (absl::Status s = AddAll(where, "group", parsed, target->mutable_groups()); !s.ok()) return s;
  if (absl::Status s = AddAll(where, "function", parsed, target->mutable_functions()); !s.ok())
    return s;
  if (absl::Status s = AddAll(where, "exclude", parsed, target->mutable_exclude_connection_ids());
      !s.ok()) {
    return s;
  }
  target->set_all(parsed.Has("all"));
  for (const char* flag : {"app", "channel"}) {
    std::optional<std::string> value = parsed.Get(flag);
    if (!value.has_value()) continue;
    if (value->empty()) return UsageError(where, absl::StrCat("--", flag, ": empty value"));
    if (std::strcmp(flag, "app") == 0) {
      target->set_app_id(*value);
    } else {
      target->set_channel(*value);
    }
  }
  if (target->connection_ids().empty() && target->user_ids().empty() && target->groups().empty() &&
      !target->all()) {
    return UsageError(where,
                      "no target: give --conn, --user-id, --group or --all (--function, --app, "
                      "--channel and --exclude only narrow a target)");
  }
  return absl::OkStatus();
}

// --code and --reason into the request's fields (code 0 when not given: the gateway's 1000).
absl::Status BuildClose(const std::string& where, const ParsedArgs& parsed, int* code,
                        std::string* reason) {
  if (std::optional<std::string> text = parsed.Get("code")) {
    absl::StatusOr<int> parsed_code = ParseCloseCode(where, *text);
    if (!parsed_code.ok()) return parsed_code.status();
    *code = *parsed_code;
  }
  if (std::optional<std::string> text = parsed.Get("reason")) {
    if (absl::Status s = CheckReason(where, *text); !s.ok()) return s;
    *reason = *text;
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Commands.

absl::Status BuildSend(const std::string& where, const ParsedArgs& parsed,
                       v1::SendRequest& request) {
  if (absl::Status s = BuildTarget(where, parsed, request.mutable_target()); !s.ok()) return s;
  const int sources =
      static_cast<int>(parsed.operands.size()) + parsed.Has("binary-file") + parsed.Has("json");
  if (sources == 0)
    return UsageError(where, "nothing to send: give TEXT, --binary-file PATH or --json JSON");
  if (sources > 1) return UsageError(where, "give only one of TEXT, --binary-file and --json");
  v1::Payload* payload = request.mutable_payload();
  if (!parsed.operands.empty()) {
    payload->set_text(parsed.operands.front());
  } else if (std::optional<std::string> path = parsed.Get("binary-file")) {
    absl::StatusOr<std::string> contents = ReadFile(where, "binary-file", *path);
    if (!contents.ok()) return contents.status();
    payload->set_binary(*std::move(contents));
  } else {
    std::string json = *parsed.Get("json");
    if (absl::Status s = CheckJson(where, "json", json); !s.ok()) return s;
    payload->set_json(std::move(json));
  }
  return absl::OkStatus();
}

absl::Status BuildCloseRequest(const std::string& where, const ParsedArgs& parsed,
                               v1::CloseRequest& request) {
  if (absl::Status s = BuildTarget(where, parsed, request.mutable_target()); !s.ok()) return s;
  int code = 0;
  std::string reason;
  if (absl::Status s = BuildClose(where, parsed, &code, &reason); !s.ok()) return s;
  request.set_code(code);
  request.set_reason(std::move(reason));
  return absl::OkStatus();
}

absl::Status BuildEmit(const std::string& where, Command command, const ParsedArgs& parsed,
                       v1::EmitRequest& request) {
  if (absl::Status s = BuildTarget(where, parsed, request.mutable_target()); !s.ok()) return s;
  if (command == Command::kForceLogout) {
    request.set_name("forceLogout");
    request.set_close(true);
  } else {
    std::optional<std::string> name = parsed.Get("name");
    if (!name.has_value()) return UsageError(where, "--name is required (the event's name)");
    if (name->empty()) return UsageError(where, "--name: empty value");
    request.set_name(*name);
    request.set_close(parsed.Has("close"));
    if (!request.close()) {
      for (const char* flag : {"code", "reason"}) {
        if (parsed.Has(flag)) return UsageError(where, absl::StrCat("--", flag, " needs --close"));
      }
    }
  }
  if (std::optional<std::string> data = parsed.Get("data")) {
    if (absl::Status s = CheckJson(where, "data", *data); !s.ok()) return s;
    request.set_data_json(*data);
  }
  int code = 0;
  std::string reason;
  if (absl::Status s = BuildClose(where, parsed, &code, &reason); !s.ok()) return s;
  request.set_code(code);
  request.set_reason(std::move(reason));
  return absl::OkStatus();
}

absl::Status BuildGroups(const std::string& where, const char* flag, const ParsedArgs& parsed,
                         v1::GroupsRequest& request) {
  if (absl::Status s = BuildTarget(where, parsed, request.mutable_target()); !s.ok()) return s;
  if (!parsed.Has(flag)) {
    return UsageError(where,
                      absl::StrCat("--", flag, " GROUP is required (repeat it for several)"));
  }
  return AddAll(where, flag, parsed, request.mutable_groups());
}

absl::Status BuildBind(const std::string& where, const ParsedArgs& parsed,
                       v1::BindRequest& request) {
  if (absl::Status s = BuildTarget(where, parsed, request.mutable_target()); !s.ok()) return s;
  v1::Identity* identity = request.mutable_identity();
  if (std::optional<std::string> v = parsed.Get("set-user")) identity->set_user_id(*v);
  if (std::optional<std::string> v = parsed.Get("set-app")) identity->set_app_id(*v);
  if (std::optional<std::string> v = parsed.Get("set-channel")) identity->set_channel(*v);
  if (std::optional<std::string> v = parsed.Get("set-device")) identity->set_device_id(*v);
  if (absl::Status s =
          ParsePairs(where, "set-meta", parsed.GetAll("set-meta"), identity->mutable_metadata());
      !s.ok()) {
    return s;
  }
  if (!identity->has_user_id() && !identity->has_app_id() && !identity->has_channel() &&
      !identity->has_device_id() && identity->metadata().empty()) {
    return UsageError(
        where,
        "nothing to change: give --set-user, --set-app, --set-channel, --set-device or "
        "--set-meta");
  }
  return absl::OkStatus();
}

absl::Status BuildGet(const std::string& where, const ParsedArgs& parsed,
                      v1::GetConnectionRequest& request) {
  if (parsed.operands.empty()) return UsageError(where, "the connection ID is required");
  if (parsed.operands.front().empty()) return UsageError(where, "empty connection ID");
  request.set_connection_id(parsed.operands.front());
  return absl::OkStatus();
}

absl::Status BuildList(const std::string& where, const ParsedArgs& parsed,
                       v1::ListConnectionsRequest& request, bool* all) {
  struct Filter {
    const char* flag;
    void (v1::ListConnectionsRequest::*set)(const std::string&);
  };
  for (Filter filter : {Filter{"function", &v1::ListConnectionsRequest::set_function},
                        Filter{"user-id", &v1::ListConnectionsRequest::set_user_id},
                        Filter{"group", &v1::ListConnectionsRequest::set_group},
                        Filter{"app", &v1::ListConnectionsRequest::set_app_id},
                        Filter{"channel", &v1::ListConnectionsRequest::set_channel},
                        Filter{"page-token", &v1::ListConnectionsRequest::set_page_token}}) {
    std::optional<std::string> value = parsed.Get(filter.flag);
    if (!value.has_value()) continue;
    if (value->empty()) return UsageError(where, absl::StrCat("--", filter.flag, ": empty value"));
    (request.*filter.set)(*value);
  }
  if (std::optional<std::string> text = parsed.Get("page-size")) {
    int size = 0;
    if (!absl::SimpleAtoi(*text, &size) || size < 1 || size > 1000) {
      return UsageError(where,
                        absl::StrCat("--page-size: '", *text, "' is not a number from 1 to 1000"));
    }
    request.set_page_size(size);
  }
  *all = parsed.Has("all");
  return absl::OkStatus();
}

absl::Status BuildSignUrl(const std::string& where, const ParsedArgs& parsed,
                          v1::SignUrlRequest& request) {
  std::optional<std::string> function = parsed.Get("function");
  if (!function.has_value()) return UsageError(where, "--function is required");
  if (function->empty()) return UsageError(where, "--function: empty value");
  request.set_function(*function);
  if (absl::Status s = ParsePairs(where, "query", parsed.GetAll("query"), request.mutable_query());
      !s.ok()) {
    return s;
  }
  if (std::optional<std::string> user = parsed.Get("user-id")) {
    if (user->empty()) return UsageError(where, "--user-id: empty value");
    request.set_user_id(*user);
  }
  if (std::optional<std::string> text = parsed.Get("ttl")) {
    absl::StatusOr<absl::Duration> ttl = ParseDurationFlag(where, "ttl", *text);
    if (!ttl.ok()) return ttl.status();
    if (*ttl < absl::Seconds(1) || *ttl != absl::Seconds(absl::ToInt64Seconds(*ttl))) {
      return UsageError(where,
                        absl::StrCat("--ttl: '", *text, "' is not a whole number of seconds"));
    }
    if (absl::ToInt64Seconds(*ttl) > UINT32_MAX) {
      return UsageError(where, absl::StrCat("--ttl: '", *text, "' is too long"));
    }
    request.set_ttl_seconds(static_cast<uint32_t>(absl::ToInt64Seconds(*ttl)));
  }
  return absl::OkStatus();
}

absl::Status BuildRequest(const CommandSpec& spec, const ParsedArgs& parsed,
                          Invocation& invocation) {
  const std::string where = spec.name;
  switch (spec.command) {
    case Command::kSend:
      return BuildSend(where, parsed, invocation.send);
    case Command::kClose:
      return BuildCloseRequest(where, parsed, invocation.close);
    case Command::kEmit:
    case Command::kForceLogout:
      return BuildEmit(where, spec.command, parsed, invocation.emit);
    case Command::kJoin:
      return BuildGroups(where, "join", parsed, invocation.groups);
    case Command::kLeave:
      return BuildGroups(where, "leave", parsed, invocation.groups);
    case Command::kBind:
      return BuildBind(where, parsed, invocation.bind);
    case Command::kGet:
      return BuildGet(where, parsed, invocation.get);
    case Command::kList:
      return BuildList(where, parsed, invocation.list, &invocation.list_all);
    case Command::kSignUrl:
      return BuildSignUrl(where, parsed, invocation.sign_url);
    case Command::kHelp:
      break;
  }
  return absl::InternalError("no request builder for the command");
}

Invocation Help(std::string text) {
  Invocation invocation;
  invocation.command = Command::kHelp;
  invocation.help = std::move(text);
  return invocation;
}

}  // namespace

std::string Usage() {
  std::string text =
      "usage: fngatectl COMMAND [flags]\n"
      "\n"
      "The command-line client of the fngate gateway's control service\n"
      "(fngate.v1.GatewayControl). Exit status: 0 done, 1 the call failed, 2 bad usage.\n"
      "\n"
      "commands:\n";
  for (const CommandSpec& spec : Commands()) {
    absl::StrAppend(&text, "  ", Synopsis(spec), "\n");
  }
  absl::StrAppend(&text,
                  "\n"
                  "TARGET: --conn ID, --user-id ID, --group NAME (each repeatable) or --all,\n"
                  "narrowed by --function NAME, --app ID, --channel NAME, --exclude ID.\n"
                  "Connection ids may start with - : a TEXT or ID that starts with -- goes\n"
                  "after a lone -- (fngatectl get -- --Xk2...).\n"
                  "\n"
                  "global flags (before or after the command):\n");
  for (const Flag& flag : GlobalFlags()) absl::StrAppend(&text, FlagLine(flag));
  absl::StrAppend(&text, "\n'fngatectl COMMAND --help' describes a command.\n");
  return text;
}

absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args, const Environment& env) {
  ParsedArgs parsed;
  size_t command_index = 0;
  if (absl::Status s = ParseFlags(args, 0, nullptr, parsed, &command_index); !s.ok()) return s;
  if (parsed.Has("help")) return Help(Usage());
  if (command_index >= args.size()) {
    return UsageError("", absl::StrCat("no command given; one of: ", CommandNames()));
  }
  const std::string& name = args[command_index];
  if (name == "help") {
    if (command_index + 1 >= args.size()) return Help(Usage());
    const CommandSpec* spec = FindCommand(args[command_index + 1]);
    if (spec == nullptr) {
      return UsageError("", absl::StrCat("unknown command '", args[command_index + 1],
                                         "'; commands: ", CommandNames()));
    }
    return Help(CommandHelp(*spec));
  }
  const CommandSpec* spec = FindCommand(name);
  if (spec == nullptr) {
    return UsageError("", absl::StrCat("unknown command '", name, "'; commands: ", CommandNames()));
  }
  // --help wins over every other mistake on the line, so it always helps.
  for (size_t i = command_index + 1; i < args.size() && args[i] != "--"; ++i) {
    if (args[i] == "--help" || args[i] == "-h") return Help(CommandHelp(*spec));
  }
  if (absl::Status s = ParseFlags(args, command_index + 1, spec, parsed, nullptr); !s.ok())
    return s;
  if (parsed.operands.size() > static_cast<size_t>(spec->max_operands)) {
    return UsageError(
        spec->name, absl::StrCat("unexpected argument '", parsed.operands[spec->max_operands], "'",
                                 spec->max_operands > 0 ? " (quote a value that has spaces)" : ""));
  }

  Invocation invocation;
  invocation.command = spec->command;
  if (absl::Status s = BuildConnection(spec->name, parsed, env, invocation); !s.ok()) return s;
  if (absl::Status s = BuildOutput(spec->name, spec->command, parsed, invocation); !s.ok())
    return s;
  if (absl::Status s = BuildRequest(*spec, parsed, invocation); !s.ok()) return s;
  return invocation;
}

}  // namespace fngate::ctl
