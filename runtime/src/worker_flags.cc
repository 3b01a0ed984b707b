// The standard worker command line: ParseWorkerFlags, WorkerUsage, InitWorker (worker.h).
#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "fngate/runtime/worker.h"

namespace fngate::runtime {
namespace {

// Debian 12's Abseil has its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0).
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Checks "HOST:PORT" (HOST may be a bracketed IPv6 address); port 0 only if `allow_zero_port`.
absl::Status CheckHostPort(std::string_view flag, std::string_view value, bool allow_zero_port) {
  const size_t colon = value.rfind(':');
  const std::string_view host = colon == std::string_view::npos ? "" : value.substr(0, colon);
  const std::string_view digits = colon == std::string_view::npos ? "" : value.substr(colon + 1);
  int port = -1;
  const bool digits_ok = !digits.empty() && digits.size() <= 5 &&
                         std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) &&
                         absl::SimpleAtoi(Sv(digits), &port);
  if (!host.empty() && digits_ok && port <= 65535 && (port > 0 || allow_zero_port)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--", Sv(flag), ": expected HOST:PORT",
      allow_zero_port ? " (port 0-65535)" : " (port 1-65535)", ", got '", Sv(value), "'"));
}

absl::StatusOr<bool> ParseBool(std::string_view flag, std::string_view value) {
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("--", Sv(flag), ": expected true or false, got '", Sv(value), "'"));
}

// Flags that take a value, besides --log_events.
constexpr std::array<std::string_view, 14> kValueFlags = {
    "listen", "gateway", "name", "log_level", "handler_threads", "tls_cert", "tls_key",
    "tls_client_ca", "gateway_token", "gateway_token_file", "gateway_tls_ca",
    "gateway_tls_cert", "gateway_tls_key", "gateway_tls_server_name"};

// The token from a file, without the trailing newline `echo token > file` leaves.
absl::StatusOr<std::string> ReadTokenFile(std::string_view path) {
  std::ifstream in{std::string(path)};
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("--gateway_token_file: cannot read '",
                                                   Sv(path), "': ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  absl::StripTrailingAsciiWhitespace(&token);
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--gateway_token_file: '", Sv(path), "' is empty"));
  }
  return token;
}

std::string_view Basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

absl::StatusOr<WorkerOptions> ParseWorkerFlags(int argc, const char* const* argv) {
  WorkerOptions options;
  // The default, so the token need not show in `ps`; a flag overrides it.
  if (const char* token = std::getenv("FNGATE_TOKEN"); token != nullptr) {
    options.gateway_credentials.token = token;
  }
  bool token_flag = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", Sv(arg), "'"));
    }
    const size_t equals = arg.find('=');
    const std::string_view name =
        arg.substr(2, equals == std::string_view::npos ? std::string_view::npos : equals - 2);
    const bool has_value = equals != std::string_view::npos;
    std::string_view value = has_value ? arg.substr(equals + 1) : std::string_view();
    const absl::string_view flag_name = Sv(name);

    if (name == "log_events") {
      if (!has_value) {
        options.log_events = true;
        continue;
      }
      absl::StatusOr<bool> on = ParseBool(name, value);
      if (!on.ok()) return on.status();
      options.log_events = *on;
      continue;
    }

    if (std::find(kValueFlags.begin(), kValueFlags.end(), name) == kValueFlags.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", flag_name));
    }
    if (!has_value) {
      // `--flag value`; a following flag is not a value.
      if (i + 1 >= argc || std::string_view(argv[i + 1]).substr(0, 2) == "--") {
        return absl::InvalidArgumentError(absl::StrCat("--", flag_name, " needs a value"));
      }
      value = argv[++i];
    }
    if (name == "listen") {
      if (absl::Status status = CheckHostPort(name, value, /*allow_zero_port=*/true);
          !status.ok()) {
        return status;
      }
      options.listen_address = std::string(value);
    } else if (name == "gateway") {
      if (absl::Status status = CheckHostPort(name, value, /*allow_zero_port=*/false);
          !status.ok()) {
        return status;
      }
      options.gateway_address = std::string(value);
    } else if (name == "name") {
      options.name = std::string(value);
    } else if (name == "tls_cert") {
      options.tls_cert_file = std::string(value);
    } else if (name == "tls_key") {
      options.tls_key_file = std::string(value);
    } else if (name == "tls_client_ca") {
      options.tls_client_ca_file = std::string(value);
    } else if (name == "gateway_token" || name == "gateway_token_file") {
      if (token_flag) {
        return absl::InvalidArgumentError(
            "--gateway_token and --gateway_token_file: give the token once");
      }
      token_flag = true;
      if (name == "gateway_token") {
        options.gateway_credentials.token = std::string(value);
      } else {
        absl::StatusOr<std::string> token = ReadTokenFile(value);
        if (!token.ok()) return token.status();
        options.gateway_credentials.token = *std::move(token);
      }
    } else if (name == "gateway_tls_ca") {
      options.gateway_credentials.tls_ca_file = std::string(value);
    } else if (name == "gateway_tls_cert") {
      options.gateway_credentials.tls_cert_file = std::string(value);
    } else if (name == "gateway_tls_key") {
      options.gateway_credentials.tls_key_file = std::string(value);
    } else if (name == "gateway_tls_server_name") {
      options.gateway_credentials.tls_server_name = std::string(value);
    } else if (name == "handler_threads") {
      int threads = 0;
      if (!absl::SimpleAtoi(Sv(value), &threads) || threads < 0 || threads > 1024) {
        return absl::InvalidArgumentError("--handler_threads: expected a number from 0 to 1024");
      }
      options.handler_threads = threads;
    } else {  // log_level
      if (absl::StatusOr<log::Level> level = log::ParseLevel(value); !level.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("--log_level: ", level.status().message()));
      }
      options.log_level = std::string(value);
    }
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (!options.tls_client_ca_file.empty() && options.tls_cert_file.empty()) {
    return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert and --tls_key");
  }
  if (options.gateway_credentials.tls_cert_file.empty() !=
      options.gateway_credentials.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--gateway_tls_cert and --gateway_tls_key go together");
  }
  return options;
}

std::string WorkerUsage(const char* program) {
  const std::string_view base = Basename(program);
  return absl::StrCat(
      "usage: ", Sv(base),
      " [--listen=HOST:PORT] [--gateway=HOST:PORT] [--log_events] [--name=NAME]"
      " [--log_level=LEVEL] [--handler_threads=N] [TLS and credential flags]\n"
      "  --listen=HOST:PORT   serve FunctionService here (default 127.0.0.1:7001; port 0 picks"
      " one)\n"
      "  --gateway=HOST:PORT  gateway control service for pushes when an event names none\n"
      "  --log_events         log one EVENT line per event on stderr\n"
      "  --name=NAME          replica name for the logs\n"
      "  --log_level=LEVEL    debug, info (default), warning or error\n"
      "  --handler_threads=N  threads running handlers for batched event streams (default 4;"
      " 0 runs them on gRPC's threads: fastest, for handlers that never block)\n"
      "  --tls_cert=FILE --tls_key=FILE  serve TLS (PEM files)\n"
      "  --tls_client_ca=FILE  mutual TLS: gateways must present a certificate this CA signed\n"
      "  --gateway_token=TOKEN, --gateway_token_file=FILE  the gateways' control token\n"
      "                       (default: the environment variable FNGATE_TOKEN)\n"
      "  --gateway_tls_ca=FILE  TLS to the gateways' control service, trusting this CA\n"
      "  --gateway_tls_cert=FILE --gateway_tls_key=FILE  our certificate, for mutual TLS\n"
      "  --gateway_tls_server_name=NAME  name expected in the gateways' certificate\n"
      "Prints `READY grpc=<port>` on stdout once serving; SIGTERM drains and exits 0.\n");
}

void BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

WorkerOptions InitWorker(int argc, char** argv) {
  BlockShutdownSignals();
  const char* program = argc > 0 ? argv[0] : "worker";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      const std::string usage = WorkerUsage(program);
      std::fwrite(usage.data(), 1, usage.size(), stdout);
      std::exit(0);
    }
  }
  absl::StatusOr<WorkerOptions> options = ParseWorkerFlags(argc, argv);
  if (!options.ok()) {
    const std::string message =
        absl::StrCat(Sv(Basename(program)), ": ", options.status().message(), " (see --help)\n");
    std::fwrite(message.data(), 1, message.size(), stderr);
    std::exit(2);
  }
  return *std::move(options);
}

}  // namespace fngate::runtime
