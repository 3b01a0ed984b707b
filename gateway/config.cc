#include "gateway/config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>
#include <yaml-cpp/yaml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gateway/client_address.h"
#include "gateway/origin.h"
#include "gateway/secret.h"
#include "gateway/tls.h"

namespace fngate::gateway {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string Quote(const std::string& s) { return absl::StrCat("'", s, "'"); }

// HMAC keys shorter than this are guessable; SHA-256's block is 64, its output 32.
constexpr size_t kMinSecretBytes = 16;

// Sets (or, for a repeated field, appends) one scalar from its text form.
absl::Status SetScalar(Message& msg, const FieldDescriptor& field, const std::string& text) {
  const Reflection& r = *msg.GetReflection();
  const bool repeated = field.is_repeated();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      repeated ? r.AddString(&msg, &field, text) : r.SetString(&msg, &field, text);
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v = false;
      if (!absl::SimpleAtob(text, &v)) {
        return absl::InvalidArgumentError(absl::StrCat("expected true or false, got ", Quote(text)));
      }
      repeated ? r.AddBool(&msg, &field, v) : r.SetBool(&msg, &field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("expected an unsigned integer, got ", Quote(text)));
      }
      repeated ? r.AddUInt32(&msg, &field, v) : r.SetUInt32(&msg, &field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("expected an unsigned integer, got ", Quote(text)));
      }
      repeated ? r.AddUInt64(&msg, &field, v) : r.SetUInt64(&msg, &field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) {
        return absl::InvalidArgumentError(absl::StrCat("expected an integer, got ", Quote(text)));
      }
      repeated ? r.AddInt32(&msg, &field, v) : r.SetInt32(&msg, &field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) {
        return absl::InvalidArgumentError(absl::StrCat("expected an integer, got ", Quote(text)));
      }
      repeated ? r.AddInt64(&msg, &field, v) : r.SetInt64(&msg, &field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double v = 0;
      if (!absl::SimpleAtod(text, &v)) {
        return absl::InvalidArgumentError(absl::StrCat("expected a number, got ", Quote(text)));
      }
      repeated ? r.AddDouble(&msg, &field, v) : r.SetDouble(&msg, &field, v);
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError("this key cannot be set from text");
  }
}

class YamlMerger {
 public:
  YamlMerger(const std::string& file, ConfigOrigins& origins) : file_(file), origins_(origins) {}

  absl::Status MergeMap(const YAML::Node& node, Message& msg, const std::string& prefix) {
    if (!node.IsMap()) {
      return Error(node, prefix, "expected a mapping of keys to values");
    }
    const google::protobuf::Descriptor& desc = *msg.GetDescriptor();
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string key = it->first.as<std::string>();
      const std::string path = prefix.empty() ? key : absl::StrCat(prefix, ".", key);
      const FieldDescriptor* field = desc.FindFieldByName(key);
      if (field == nullptr) {
        std::vector<std::string> known;
        for (int i = 0; i < desc.field_count(); ++i) known.push_back(desc.field(i)->name());
        return Error(it->first, path,
                     absl::StrCat("unknown key (known here: ", absl::StrJoin(known, ", "), ")"));
      }
      origins_[path] = Where(it->first);
      if (absl::Status s = MergeField(it->second, msg, *field, path); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  absl::Status MergeField(const YAML::Node& value, Message& msg, const FieldDescriptor& field,
                          const std::string& path) {
    const Reflection& r = *msg.GetReflection();
    if (field.is_map()) {
      if (!value.IsMap()) return Error(value, path, "expected a mapping");
      for (auto it = value.begin(); it != value.end(); ++it) {
        Message* entry = r.AddMessage(&msg, &field);
        const FieldDescriptor* k = entry->GetDescriptor()->FindFieldByName("key");
        const FieldDescriptor* v = entry->GetDescriptor()->FindFieldByName("value");
        if (absl::Status s = SetScalar(*entry, *k, it->first.as<std::string>()); !s.ok()) {
          return Error(it->first, path, s.message());
        }
        if (absl::Status s = SetScalar(*entry, *v, it->second.as<std::string>()); !s.ok()) {
          return Error(it->second, path, s.message());
        }
      }
      return absl::OkStatus();
    }
    if (field.is_repeated()) {
      if (!value.IsSequence()) return Error(value, path, "expected a list");
      r.ClearField(&msg, &field);
      int index = 0;
      for (const YAML::Node& item : value) {
        const std::string item_path = absl::StrCat(path, "[", index++, "]");
        origins_[item_path] = Where(item);
        if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          if (absl::Status s = MergeMap(item, *r.AddMessage(&msg, &field), item_path); !s.ok()) {
            return s;
          }
        } else if (absl::Status s = SetScalarNode(item, msg, field, item_path); !s.ok()) {
          return s;
        }
      }
      return absl::OkStatus();
    }
    if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      return MergeMap(value, *r.MutableMessage(&msg, &field), path);
    }
    return SetScalarNode(value, msg, field, path);
  }

  absl::Status SetScalarNode(const YAML::Node& value, Message& msg, const FieldDescriptor& field,
                             const std::string& path) {
    if (!value.IsScalar()) return Error(value, path, "expected a single value");
    if (absl::Status s = SetScalar(msg, field, value.Scalar()); !s.ok()) {
      return Error(value, path, s.message());
    }
    return absl::OkStatus();
  }

  std::string Where(const YAML::Node& node) const {
    return absl::StrCat(file_, ":", node.Mark().line + 1);
  }

  absl::Status Error(const YAML::Node& node, const std::string& path,
                     absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(node), ": key ", Quote(path), ": ", message));
  }

  const std::string& file_;
  ConfigOrigins& origins_;
};

std::string Origin(const ConfigOrigins& origins, const std::string& path) {
  auto it = origins.find(path);
  return it == origins.end() ? "default" : it->second;
}

// True for a function name usable as one URL path segment.
bool IsValidFunctionName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

std::string NormaliseTarget(const std::string& target) {
  // gRPC's default resolver is dns, which takes one name; a bare list means literal addresses.
  if (absl::StrContains(target, ",") && !absl::StrContains(target, ":/") &&
      !absl::StartsWith(target, "ipv4:") && !absl::StartsWith(target, "ipv6:")) {
    return absl::StrCat("ipv4:", target);
  }
  return target;
}

// A public URL clients can use: ws:// or wss://, a host, an optional path prefix, nothing else.
absl::Status CheckPublicUrl(const std::string& url) {
  const size_t scheme_end = url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  if (scheme != "ws" && scheme != "wss") {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ws://HOST[:PORT][/PREFIX] or wss://..., got ", Quote(url)));
  }
  const std::string rest = url.substr(scheme_end + 3);
  if (rest.empty() || rest.front() == '/') {
    return absl::InvalidArgumentError(absl::StrCat("no host in ", Quote(url)));
  }
  for (char c : rest) {
    if (c == '?' || c == '#' || !absl::ascii_isgraph(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a public URL has no query, fragment, spaces or control characters: ", Quote(url)));
    }
  }
  return absl::OkStatus();
}

template <typename T>
T Or(T value, T fallback) {
  return value == T{} ? fallback : value;
}

// One Limits message onto `fallback`: a field left 0 keeps the fallback's value (the built-in
// default for the gateway's limits, the gateway's for a function's). Problems name `path`.
LimitSettings ReadLimits(
    const config::v1::Limits& l, const LimitSettings& fallback, const std::string& path,
    const std::function<void(const std::string&, absl::string_view)>& problem) {
  LimitSettings s = fallback;
  auto ms = [](uint32_t value, std::chrono::milliseconds otherwise) {
    return value == 0 ? otherwise : std::chrono::milliseconds(value);
  };
  s.max_message_bytes = Or<uint64_t>(l.max_message_bytes(), fallback.max_message_bytes);
  if (s.max_message_bytes > (64u << 20)) {
    problem(path + ".max_message_bytes", "at most 67108864 (64 MiB)");
  }
  s.max_outbound_bytes = Or<uint64_t>(l.max_outbound_bytes(), fallback.max_outbound_bytes);
  if (s.max_outbound_bytes < s.max_message_bytes) {
    problem(path + ".max_outbound_bytes",
            absl::StrCat("must be at least max_message_bytes (", s.max_message_bytes, ")"));
  }
  if (l.slow_consumer() == "close") {
    s.slow_consumer = SlowConsumerPolicy::kClose;
  } else if (l.slow_consumer() == "drop_oldest") {
    s.slow_consumer = SlowConsumerPolicy::kDropOldest;
  } else if (!l.slow_consumer().empty()) {
    problem(path + ".slow_consumer", "expected close or drop_oldest");
  }
  s.max_inbound_queue = Or(l.max_inbound_queue(), fallback.max_inbound_queue);
  if (s.max_inbound_queue > 65536) problem(path + ".max_inbound_queue", "at most 65536");
  s.handshake_timeout = ms(l.handshake_timeout_ms(), fallback.handshake_timeout);
  s.max_header_bytes = Or(l.max_header_bytes(), fallback.max_header_bytes);
  if (s.max_header_bytes < 1024 || s.max_header_bytes > (1u << 20)) {
    problem(path + ".max_header_bytes", "between 1024 and 1048576");
  }
  s.idle_timeout = ms(l.idle_timeout_ms(), fallback.idle_timeout);
  s.max_lifetime = ms(l.max_lifetime_ms(), fallback.max_lifetime);
  if (l.max_messages_per_second() != 0) {
    // A new rate brings its own burst unless one is given with it.
    s.max_messages_per_second = l.max_messages_per_second();
    s.message_burst = Or(l.message_burst(), l.max_messages_per_second());
  } else if (l.message_burst() != 0) {
    s.message_burst = l.message_burst();
    if (s.max_messages_per_second == 0) {
      problem(path + ".message_burst", "needs max_messages_per_second");
    }
  }
  s.max_connections = Or(l.max_connections(), fallback.max_connections);
  s.max_connections_per_ip = Or(l.max_connections_per_ip(), fallback.max_connections_per_ip);
  return s;
}

using Problem = std::function<void(const std::string& path, absl::string_view message)>;

// Shortest control token accepted: a guessable token is no credential.
constexpr size_t kMinTokenBytes = 16;

// The security keys: credentials and TLS. Secrets are read here, once.
void ApplySecurity(const config::v1::GatewayConfig& c, GatewaySettings& s,
                   const Problem& problem) {
  if (c.has_control_token()) {
    const std::string path =
        c.control_token().file().empty() ? "control_token.env" : "control_token.file";
    absl::StatusOr<std::string> token = ReadSecret(c.control_token());
    if (!token.ok()) {
      problem(path, token.status().message());
    } else if (token->size() < kMinTokenBytes) {
      problem(path, absl::StrCat("a token is at least ", kMinTokenBytes, " bytes, got ",
                                 token->size()));
    } else {
      s.control_token = *std::move(token);
    }
  }
  for (int i = 0; i < c.trusted_proxies_size(); ++i) {
    absl::StatusOr<IpNetwork> network = ParseIpNetwork(c.trusted_proxies(i));
    if (network.ok()) {
      s.trusted_proxies.push_back(*network);
    } else {
      problem(absl::StrCat("trusted_proxies[", i, "]"), network.status().message());
    }
  }

  // TLS files are read and checked now: a bad file stops the start, naming its key.
  auto tls_problem = [&](const std::string& prefix, const absl::Status& status) {
    const absl::string_view message = status.message();
    const size_t colon = message.find(": ");
    problem(absl::StrCat(prefix, ".", message.substr(0, colon)), message.substr(colon + 2));
  };
  auto server_tls = [&](const std::string& prefix, const config::v1::ServerTls& in,
                        ServerTlsSettings& out) {
    out.cert_file = in.cert_file();
    out.key_file = in.key_file();
    out.client_ca_file = in.client_ca_file();
    if (absl::Status st = LoadTlsFiles(out); !st.ok()) tls_problem(prefix, st);
  };
  server_tls("tls", c.tls(), s.tls);
  server_tls("control_tls", c.control_tls(), s.control_tls);
  s.worker_tls.ca_file = c.worker_tls().ca_file();
  s.worker_tls.cert_file = c.worker_tls().cert_file();
  s.worker_tls.key_file = c.worker_tls().key_file();
  s.worker_tls.server_name = c.worker_tls().server_name();
  if (absl::Status st = LoadTlsFiles(s.worker_tls); !st.ok()) tls_problem("worker_tls", st);

  // The control service pushes to and closes any connection: beyond loopback it needs
  // credentials (SPEC section 3). A name other than localhost may resolve anywhere.
  const std::optional<IpAddress> control_ip = ParseIpAddress(s.control_listen.host);
  const bool loopback = s.control_listen.host == "localhost" ||
                        (control_ip.has_value() && IsLoopback(*control_ip));
  if (!s.control_listen.host.empty() && !loopback && !c.has_control_token() && c.control_tls().client_ca_file().empty()) {
    problem("control_listen",
            absl::StrCat(s.control_listen.host,
                         " is not a loopback address, and the control service would accept "
                         "anyone: set control_token (file or env) or control_tls with "
                         "client_ca_file (mutual TLS)"));
  }
}

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat("expected HOST:PORT, got ", Quote(text)));
  }
  HostPort hp;
  hp.host = text.substr(0, colon);
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);  // [::1]:80
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in ", Quote(text)));
  }
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

absl::Status MergeConfigText(const std::string& text, const std::string& file,
                             config::v1::GatewayConfig& config, ConfigOrigins& origins) {
  // yaml-cpp reports through exceptions; they stop here, as a Status naming file and line.
  try {
    const YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return absl::OkStatus();  // An empty file is a valid, empty config.
    return YamlMerger(file, origins).MergeMap(root, config, "");
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ":", e.mark.line + 1, ": not valid YAML or JSON: ", e.msg));
  }
}

absl::Status ApplyFlag(const std::string& name, const std::string& value,
                       config::v1::GatewayConfig& config, ConfigOrigins& origins) {
  const std::string where = absl::StrCat("flag --", name);
  if (name == "function") {
    const size_t eq = value.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == value.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected NAME=TARGET, got ", Quote(value)));
    }
    const std::string fn = value.substr(0, eq);
    int index = 0;
    while (index < config.functions_size() && config.functions(index).name() != fn) ++index;
    config::v1::FunctionConfig* slot =
        index < config.functions_size() ? config.mutable_functions(index) : config.add_functions();
    slot->set_name(fn);
    slot->set_target(value.substr(eq + 1));
    origins[absl::StrCat("functions[", index, "]")] = where;
    origins[absl::StrCat("functions[", index, "].name")] = where;
    origins[absl::StrCat("functions[", index, "].target")] = where;
    return absl::OkStatus();
  }
  Message* msg = &config;
  const std::vector<std::string> parts = absl::StrSplit(name, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    // "functions[1]" names an element of a list of messages that the file or an earlier
    // --function flag created.
    std::string part = parts[i];
    int index = -1;
    if (const size_t bracket = part.find('['); bracket != std::string::npos && part.back() == ']') {
      if (!absl::SimpleAtoi(part.substr(bracket + 1, part.size() - bracket - 2), &index) ||
          index < 0) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, ": bad index"));
      }
      part = part.substr(0, bracket);
    }
    const FieldDescriptor* field = msg->GetDescriptor()->FindFieldByName(part);
    const bool last = i + 1 == parts.size();
    const bool is_message =
        field != nullptr && field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (field == nullptr || field->is_map() ||
        (!last && (!is_message || field->is_repeated() != (index >= 0))) ||
        (last && (is_message || index >= 0))) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!last) {
      const Reflection& r = *msg->GetReflection();
      if (index >= 0) {
        if (index >= r.FieldSize(*msg, field)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "flag --", name, ": there is no ", part, "[", index, "] to set (define it first, "
              "e.g. with --function=NAME=TARGET)"));
        }
        msg = r.MutableRepeatedMessage(msg, field, index);
      } else {
        msg = r.MutableMessage(msg, field);
      }
      continue;
    }
    // A repeated flag replaces what the file said the first time, and appends after that.
    if (field->is_repeated() && !absl::StartsWith(Origin(origins, name), "flag")) {
      msg->GetReflection()->ClearField(msg, field);
    }
    if (absl::Status s = SetScalar(*msg, *field, value); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
    }
    origins[name] = where;
  }
  return absl::OkStatus();
}

absl::StatusOr<GatewaySettings> ToSettings(const config::v1::GatewayConfig& c,
                                           const ConfigOrigins& origins) {
  std::vector<std::string> problems;
  auto problem = [&](const std::string& path, absl::string_view message) {
    problems.push_back(absl::StrCat(Origin(origins, path), ": key ", Quote(path), ": ", message));
  };
  GatewaySettings s;
  auto host_port = [&](const std::string& path, const std::string& value,
                       const std::string& fallback, HostPort& out) {
    absl::StatusOr<HostPort> hp = ParseHostPort(value.empty() ? fallback : value);
    if (hp.ok()) {
      out = *hp;
    } else {
      problem(path, hp.status().message());
    }
  };
  host_port("listen", c.listen(), "0.0.0.0:8080", s.listen);
  host_port("control_listen", c.control_listen(), "127.0.0.1:8081", s.control_listen);
  host_port("admin_listen", c.admin_listen(), "127.0.0.1:8082", s.admin_listen);
  s.control_advertise = c.control_advertise();
  s.io_threads = c.io_threads() != 0 ? c.io_threads()
                                     : std::max(1u, std::thread::hardware_concurrency());
  if (s.io_threads > 256) problem("io_threads", "at most 256");

  if (c.functions().empty()) {
    problems.push_back(
        "no functions configured: add --function=NAME=TARGET or a 'functions' list in --config");
  }
  absl::flat_hash_map<std::string, int> seen;
  for (int i = 0; i < c.functions_size(); ++i) {
    const config::v1::FunctionConfig& f = c.functions(i);
    const std::string p = absl::StrCat("functions[", i, "]");
    FunctionSettings fs;
    fs.name = f.name();
    if (!IsValidFunctionName(f.name())) {
      problem(p + ".name", "a function name is 1-64 letters, digits, '-', '_' or '.'");
    } else if (!seen.emplace(f.name(), i).second) {
      problem(p + ".name", absl::StrCat("function ", Quote(f.name()), " is configured twice"));
    }
    if (f.target().empty()) problem(p + ".target", "a gRPC target is required");
    fs.target = NormaliseTarget(f.target());
    fs.max_in_flight = Or(f.max_in_flight(), 1u);
    if (fs.max_in_flight > 1024) problem(p + ".max_in_flight", "at most 1024");
    if (f.on_message_error().empty() || f.on_message_error() == "close") {
      fs.on_message_error = MessageErrorPolicy::kClose;
    } else if (f.on_message_error() == "keep_open") {
      fs.on_message_error = MessageErrorPolicy::kKeepOpen;
    } else {
      problem(p + ".on_message_error", "expected close or keep_open");
    }
    if (f.transport().empty() || f.transport() == "auto") {
      fs.transport = FunctionTransport::kAuto;
    } else if (f.transport() == "stream") {
      fs.transport = FunctionTransport::kStream;
    } else if (f.transport() == "unary") {
      fs.transport = FunctionTransport::kUnary;
    } else {
      problem(p + ".transport", "expected auto, stream or unary");
    }
    fs.streams = Or(f.streams(), 4u);
    if (fs.streams > 256) problem(p + ".streams", "at most 256");
    fs.stream_max_age = std::chrono::milliseconds(Or(f.stream_max_age_ms(), 10000u));
    fs.require_signed_url = f.require_signed_url();
    if (fs.require_signed_url && c.signing().keys().empty()) {
      problem(p + ".require_signed_url",
              "needs at least one key in signing.keys (no URL could ever be valid)");
    }
    for (int k = 0; k < f.allowed_origins_size(); ++k) {
      absl::StatusOr<std::string> origin = NormalizeOrigin(f.allowed_origins(k));
      if (origin.ok()) {
        fs.allowed_origins.push_back(*std::move(origin));
      } else {
        problem(absl::StrCat(p, ".allowed_origins[", k, "]"), origin.status().message());
      }
    }
    s.functions.push_back(std::move(fs));
  }

  s.limits = ReadLimits(c.limits(), LimitSettings{}, "limits", problem);
  for (int i = 0; i < c.functions_size(); ++i) {
    const config::v1::FunctionConfig& f = c.functions(i);
    const std::string p = absl::StrCat("functions[", i, "].limits");
    // Read before the path names the function: only the gateway's value can apply.
    if (f.limits().handshake_timeout_ms() != 0) {
      problem(p + ".handshake_timeout_ms",
              "the upgrade request is read before its path names the function; set it in the "
              "gateway's limits");
    }
    if (f.limits().max_header_bytes() != 0) {
      problem(p + ".max_header_bytes",
              "the upgrade request is read before its path names the function; set it in the "
              "gateway's limits");
    }
    s.functions[i].limits = ReadLimits(f.limits(), s.limits, p, problem);
    s.functions[i].permessage_deflate = f.permessage_deflate();
  }

  const config::v1::Deadlines& d = c.deadlines();
  s.deadlines.connect = std::chrono::milliseconds(Or(d.connect_ms(), 5000u));
  s.deadlines.message = std::chrono::milliseconds(Or(d.message_ms(), 10000u));
  s.deadlines.disconnect = std::chrono::milliseconds(Or(d.disconnect_ms(), 10000u));
  s.deadlines.error = std::chrono::milliseconds(Or(d.error_ms(), 5000u));
  s.drain_grace = std::chrono::milliseconds(Or(c.drain_grace_ms(), 10000u));

  if (c.forward_headers().empty()) {
    s.forward_headers = {"user-agent", "origin"};
  } else {
    for (const std::string& h : c.forward_headers()) {
      s.forward_headers.push_back(absl::AsciiStrToLower(h));
    }
  }
  s.log_level = c.log_level().empty() ? "info" : c.log_level();
  if (s.log_level != "debug" && s.log_level != "info" && s.log_level != "warning" &&
      s.log_level != "error") {
    problem("log_level", "expected debug, info, warning or error");
  }

  const config::v1::Signing& sg = c.signing();
  for (int i = 0; i < sg.keys_size(); ++i) {
    const config::v1::SigningKey& k = sg.keys(i);
    const std::string p = absl::StrCat("signing.keys[", i, "]");
    if (!IsValidSigningKeyId(k.id())) {
      problem(p + ".id", "a key id is 1-64 letters, digits, '-' or '_'");
      continue;
    }
    bool repeated = false;
    for (const SigningKey& earlier : s.signing.keys) repeated |= earlier.id == k.id();
    if (repeated) {
      problem(p + ".id", absl::StrCat("key id ", Quote(k.id()), " is configured twice"));
      continue;
    }
    if (k.secret().file().empty() == k.secret().env().empty()) {
      problem(p + ".secret", absl::StrCat("key ", Quote(k.id()),
                                          ": set exactly one of secret.file and secret.env"));
      continue;
    }
    absl::StatusOr<std::string> secret = ReadSecret(k.secret());
    if (!secret.ok()) {
      problem(p + ".secret", absl::StrCat("key ", Quote(k.id()), ": ", secret.status().message()));
      continue;
    }
    if (secret->size() < kMinSecretBytes) {
      problem(p + ".secret",
              absl::StrCat("key ", Quote(k.id()), ": the secret has ", secret->size(),
                           " bytes; at least ", kMinSecretBytes, " are needed (32 recommended)"));
      continue;
    }
    s.signing.keys.push_back(SigningKey{k.id(), *std::move(secret)});
  }
  s.signing.public_url = sg.public_url();
  while (absl::EndsWith(s.signing.public_url, "/")) s.signing.public_url.pop_back();
  if (!sg.public_url().empty()) {
    if (absl::Status st = CheckPublicUrl(s.signing.public_url); !st.ok()) {
      problem("signing.public_url", st.message());
    }
  }
  s.signing.default_scheme = c.tls().cert_file().empty() ? "ws" : "wss";
  s.signing.max_ttl_seconds = Or(sg.max_ttl_seconds(), 86400u);
  ApplySecurity(c, s, problem);

  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  }
  return s;
}

std::string Usage() {
  return R"(usage: fngate [--config=FILE] [--FLAG=VALUE ...]

Holds WebSocket connections and forwards every connection event to function workers over gRPC.

  --config=FILE              YAML or JSON config (see deploy/gateway.example.yaml)
  --function=NAME=TARGET     route ws://host/NAME to the gRPC TARGET (repeatable), e.g.
                             --function=echo=127.0.0.1:7001 or echo=127.0.0.1:7001,127.0.0.1:7002
  --listen=HOST:PORT         public WebSocket listener (default 0.0.0.0:8080; port 0 picks one)
  --control_listen=HOST:PORT control service (default 127.0.0.1:8081)
  --admin_listen=HOST:PORT   /healthz /readyz /metrics (default 127.0.0.1:8082)
  --io_threads=N             WebSocket threads (default: one per core)
  --log_level=LEVEL          debug, info, warning, error
  --help                     this text

Every config key is also a flag named by its path, e.g. --limits.max_message_bytes=65536 or
--deadlines.message_ms=2000. Flags override the file. Once every port is bound, fngate prints
  READY ws=<port> control=<port> admin=<port>
)";
}

absl::StatusOr<GatewaySettings> LoadSettings(int argc, char** argv) {
  struct Flag {
    std::string name;
    std::string value;
  };
  std::vector<Flag> flags;
  std::string config_file;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return absl::FailedPreconditionError(Usage());
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument ", Quote(arg), " (flags look like --name=value)"));
    }
    arg = arg.substr(2);
    Flag flag;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      flag = {arg.substr(0, eq), arg.substr(eq + 1)};
    } else if (i + 1 < argc && !absl::StartsWith(argv[i + 1], "--")) {
      flag = {arg, argv[++i]};  // --name value
    } else {
      flag = {arg, "true"};  // A bare boolean flag.
    }
    if (flag.name == "config") {
      config_file = flag.value;
    } else {
      flags.push_back(std::move(flag));
    }
  }
  config::v1::GatewayConfig config;
  ConfigOrigins origins;
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) {
      return absl::InvalidArgumentError(absl::StrCat(config_file, ": cannot read the file"));
    }
    std::stringstream text;
    text << in.rdbuf();
    if (absl::Status s = MergeConfigText(text.str(), config_file, config, origins); !s.ok()) {
      return s;
    }
  }
  for (const Flag& flag : flags) {
    if (absl::Status s = ApplyFlag(flag.name, flag.value, config, origins); !s.ok()) return s;
  }
  return ToSettings(config, origins);
}

}  // namespace fngate::gateway
