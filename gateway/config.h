// File: gateway/config.h
// The gateway's configuration: the proto schema (proto/fngate/config/v1/gateway_config.proto)
// filled from a YAML or JSON file and then from flags, checked once, and turned into the
// immutable GatewaySettings the rest of the gateway reads.
//
//   absl::StatusOr<GatewaySettings> settings = LoadSettings(argc, argv);
//
// Every error names where the bad value came from: "gw.yaml:3: key 'limits.max_mesage_bytes':
// unknown key" or "flag --io_threads: expected an unsigned integer, got 'x'". Unknown keys and
// unknown flags are errors, never ignored.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "gateway/client_address.h"
#include "fngate/config/v1/gateway_config.pb.h"
#include "gateway/signed_url.h"

namespace fngate::gateway {

// "host:port" split and checked (port 0 allowed: pick one).
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
absl::StatusOr<HostPort> ParseHostPort(const std::string& text);

// What a raw client gets when one of its message events fails.
enum class MessageErrorPolicy { kClose, kKeepOpen };

// How events travel to the workers (see FunctionClient).
enum class FunctionTransport { kAuto, kStream, kUnary };

// What a slow consumer gets when its outbound queue is full (Limits.slow_consumer).
enum class SlowConsumerPolicy { kClose, kDropOldest };

// Every per-connection limit. The gateway's values are the defaults of each function's own
// (FunctionSettings::limits), where a field the function's config left 0 took the gateway's.
struct LimitSettings {
  uint64_t max_message_bytes = 1 << 20;  // After decompression; close 1009 above.
  uint64_t max_outbound_bytes = 8 << 20;
  SlowConsumerPolicy slow_consumer = SlowConsumerPolicy::kClose;
  uint32_t max_inbound_queue = 16;
  // The upgrade request's time and size; gateway-wide only (read before routing).
  std::chrono::milliseconds handshake_timeout{10000};
  uint32_t max_header_bytes = 16384;
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds max_lifetime{0};  // 0: no limit.
  uint32_t max_messages_per_second = 0;       // 0: no limit.
  uint32_t message_burst = 0;                 // Set to the rate when the config left it 0.
  uint32_t max_connections = 100000;
  uint32_t max_connections_per_ip = 0;        // 0: no limit.
};

struct FunctionSettings {
  std::string name;
  // gRPC target, normalised: "a:1,b:2" without a scheme became "ipv4:a:1,b:2".
  std::string target;
  uint32_t max_in_flight = 1;
  MessageErrorPolicy on_message_error = MessageErrorPolicy::kClose;
  FunctionTransport transport = FunctionTransport::kAuto;
  uint32_t streams = 4;
  std::chrono::milliseconds stream_max_age{10000};
  bool require_signed_url = false;  // Unsigned, tampered or expired URLs get HTTP 401.
  // This function's limits: its own config where set, the gateway's otherwise. Its
  // max_connections and max_connections_per_ip count this function's connections only.
  LimitSettings limits;
  bool permessage_deflate = false;
  // Empty: any origin; else the Origin header must be one of these (origin.h, canonical form).
  std::vector<std::string> allowed_origins;
};

struct DeadlineSettings {
  std::chrono::milliseconds connect{5000};
  std::chrono::milliseconds message{10000};
  std::chrono::milliseconds disconnect{10000};
  std::chrono::milliseconds error{5000};
};

// Signed URLs (gateway/signed_url.h). Secrets were read from their files or environment
// variables by ToSettings(); nothing may log them.
struct SigningSettings {
  std::vector<SigningKey> keys;  // Every one verifies; the last one signs.
  std::string public_url;        // "wss://ws.example.com", no trailing '/'; "" : derived.
  // Scheme of the derived public URL: "wss" when client TLS is configured, else "ws".
  std::string default_scheme = "ws";
  uint32_t max_ttl_seconds = 86400;
};

// Immutable after LoadSettings(); shared read-only by every thread.
// TLS for a server side (wss:// listener, control service). Paths from the config; the PEM
// contents are read and checked by LoadSettings (tls.h), so that building the credentials
// later cannot fail. Empty cert_file: plaintext.
struct ServerTlsSettings {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // Set: clients must present a certificate it signed.
  std::string cert_pem;
  std::string key_pem;  // A secret: never log it.
  std::string client_ca_pem;
  bool enabled() const { return !cert_file.empty(); }
};

// TLS for the gateway's calls to workers. Any field set turns it on; empty ca_file then means
// the system's root CAs.
struct ClientTlsSettings {
  std::string ca_file;
  std::string cert_file;  // With key_file: our certificate, for mutual TLS.
  std::string key_file;
  std::string server_name;  // Expected in the workers' certificates; "" = the target's host.
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;  // A secret: never log it.
  bool enabled = false;
};

struct GatewaySettings {
  HostPort listen;
  HostPort control_listen;
  HostPort admin_listen;
  std::string control_advertise;  // Empty: derived from the bound control address.
  uint32_t io_threads = 1;
  std::vector<FunctionSettings> functions;
  LimitSettings limits;
  DeadlineSettings deadlines;
  std::chrono::milliseconds drain_grace{10000};
  std::vector<std::string> forward_headers;  // Lower case.
  std::string log_level = "info";
  SigningSettings signing;

  // Security. Holds secrets: never log this struct.
  std::string control_token;  // Empty: control calls need no token.
  ServerTlsSettings tls;           // wss:// for clients.
  ServerTlsSettings control_tls;   // The control service.
  ClientTlsSettings worker_tls;    // Calls to workers.
  // X-Forwarded-For is believed from these peers only (client_address.h).
  std::vector<IpNetwork> trusted_proxies;
};

// Where each set key came from ("file.yaml:12" or "flag --x"), keyed by path
// ("functions[1].target"), so validation errors can point at the line.
using ConfigOrigins = absl::flat_hash_map<std::string, std::string>;

// Parses YAML or JSON text into `config` (merging), recording origins. `file` names the
// source in errors.
absl::Status MergeConfigText(const std::string& text, const std::string& file,
                             config::v1::GatewayConfig& config, ConfigOrigins& origins);

// Applies one flag "name=value" (without the leading dashes). Special names: `function`
// (NAME=TARGET, adds or replaces a function); any other name is a config path.
absl::Status ApplyFlag(const std::string& name, const std::string& value,
                       config::v1::GatewayConfig& config, ConfigOrigins& origins);

// Defaults, then checks every value; the error lists every problem, each with its origin.
absl::StatusOr<GatewaySettings> ToSettings(const config::v1::GatewayConfig& config,
                                           const ConfigOrigins& origins);

// The whole command line: --config=FILE first (wherever it stands), then the other flags in
// order. Returns FAILED_PRECONDITION with the usage text for --help.
absl::StatusOr<GatewaySettings> LoadSettings(int argc, char** argv);

// Usage text listing the flags.
std::string Usage();

}  // namespace fngate::gateway
