// File: gateway/ctl/ctl_args.h
// The command line of `fngatectl`, the client of the gateway's control service
// (fngate.v1.GatewayControl): ParseArgs() turns argv into an Invocation, that is the request to
// send, where to send it and how to print the answer. No I/O beyond reading the files that
// flags name (--token-file, --binary-file, --tls-*), so every usage error is found here, before
// any call, and says which flag is wrong.
//
//   absl::StatusOr<Invocation> invocation =
//       ParseArgs({"send", "--conn", "c1", "hello"}, Environment{});
//   // invocation->command == Command::kSend, invocation->send.payload().text() == "hello"
//
// Errors are INVALID_ARGUMENT with a message for a human ("close: --code: 999 is not ...");
// fngatectl prints it and exits with 2.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fngate/v1/control.pb.h"

namespace fngate::ctl {

enum class Command {
  kHelp,  // Print Invocation::help on stdout and exit 0.
  kSend,
  kClose,
  kEmit,
  kForceLogout,  // Emit("forceLogout", data, close): Invocation::emit holds the request.
  kJoin,         // Invocation::groups holds the request.
  kLeave,        // Invocation::groups holds the request.
  kBind,
  kGet,
  kList,
  kSignUrl,
};

enum class OutputFormat {
  kText,       // One summary line, a description, a table or a URL.
  kJson,       // The response as one line of JSON; list: one line per connection.
  kJsonArray,  // list only: every connection in one JSON array.
};

// How to reach the control service. File contents are already read.
struct ConnectionOptions {
  // gRPC target: "host:port", "dns:///name:port", "unix:/path".
  std::string address;
  // Sent as "authorization: Bearer <token>" when not empty.
  std::string token;
  // TLS towards the gateway; the PEM strings below are empty when their flag was not given
  // (no CA: the system roots verify the server).
  bool tls = false;
  std::string tls_root_certs;
  std::string tls_cert_chain;
  std::string tls_private_key;
  // Name expected in the server certificate, when it differs from the address's host.
  std::string tls_server_name;
  // Deadline of each call.
  absl::Duration timeout = absl::Seconds(10);
};

struct Invocation {
  Command command = Command::kHelp;
  // kHelp: what to print.
  std::string help;
  ConnectionOptions connection;
  OutputFormat output = OutputFormat::kText;

  // The request of `command`; the others stay empty.
  v1::SendRequest send;
  v1::CloseRequest close;
  v1::EmitRequest emit;
  v1::GroupsRequest groups;
  v1::BindRequest bind;
  v1::GetConnectionRequest get;
  v1::ListConnectionsRequest list;
  v1::SignUrlRequest sign_url;
  // list --all: follow next_page_token to the last page.
  bool list_all = false;
};

// The environment variables fngatectl reads (main() fills it; tests make their own).
struct Environment {
  std::optional<std::string> control;  // FNGATE_CONTROL
  std::optional<std::string> token;    // FNGATE_TOKEN
};

inline constexpr char kDefaultControlAddress[] = "127.0.0.1:8081";

// `args` is argv without the program name.
absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args, const Environment& env);

// The top-level usage text (what `fngatectl --help` prints).
std::string Usage();

}  // namespace fngate::ctl
