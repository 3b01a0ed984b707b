// fngate_load: the load tool of bench/run.sh. Drives a WebSocket server on 127.0.0.0/8 (fngate,
// or the raw Beast and Node `ws` baselines) through one scenario and reports what it measured,
// as text or as one JSON object (--json).
//
//   fngate_load SCENARIO --url=ws://127.0.0.1:PORT/PATH [flags]     (or --scenario=SCENARIO)
//
// Scenarios:
//   echo       --conns=N --inflight=W --size=S: each connection keeps W messages in flight
//              (closed loop); after --warmup seconds, counts echoes for --duration seconds.
//              Messages/s, and latency p50/p99/p99.9 from the send time each payload carries.
//   latency    --rate=R over --conns=N: open loop, a message every 1/R s whatever comes back,
//              each stamped with the time it was due (no coordinated omission); p50/p99/p99.9.
//   connect    --concurrency=C loops of: TCP connect, upgrade, close handshake, TCP end.
//              Connections/s, and upgrade latency (a fngate connect event included).
//   idle       --conns=N held idle; the server's VmRSS (--server_pid, comma-separated to add
//              several) before and after, per connection; then one message through a sample
//              of them to prove they are alive.
//   broadcast  --conns=N receivers; --rounds=K broadcasts of one message to all, one after the
//              other (plus one warm-up round): deliveries/s = frames received / time from the
//              first send to the last receipt. --broadcast_via=control: one GatewayControl.Send
//              (--control=127.0.0.1:PORT) naming every receiver, ids learnt from the first frame
//              the `bench` function sends; --broadcast_via=ws: an extra connection sends
//              "BROADCAST <payload>", which the baselines send to every other connection.
//   push       --conns=N; GatewayControl.Send to one connection at a time, round robin,
//              --inflight=W calls in flight: pushes/s received, latency from send to receipt.
//
// Common flags: --warmup=1 --duration=3 (seconds), --size=64 (payload bytes, at least 17),
// --binary (binary frames; default text), --first_frame (each connection first waits for one
// frame, the `bench` function's connection id; implied by broadcast via control and push),
// --sources=K (spread connections over source addresses 127.0.0.2..; 0 = only when the port
// range of one address would not do), --concurrency=C (upgrades in flight while opening),
// --label=TEXT (copied into the report), --cpu_pids=NAME=PID,... (report each one's CPU share of
// the measured window, and the tool's own, as "cpu"), --json, --deadline=SECONDS (the whole run; default from
// the scenario). Exit codes: 0 measured, 1 failed to measure (see "error"), 2 bad flags,
// 3 global deadline passed.
//
// Every loop is bounded in count and time; a watchdog thread ends the process at the deadline,
// so the tool never hangs. Only 127.0.0.0/8 addresses are accepted. One thread runs every
// connection (run it pinned to its own core); gRPC keeps its own threads.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <grpcpp/grpcpp.h>

#include "fngate/v1/control.grpc.pb.h"
#include "tests/load/latency_histogram.h"
#include "tests/load/ws_load_connection.h"

namespace fngate::load {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::nanoseconds;

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
  std::string scenario;
  std::string url;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string target = "/";
  int conns = 100;
  int inflight = 1;
  int size = 64;
  double warmup = 1.0;
  double duration = 3.0;
  double rate = 10000;
  int concurrency = 0;  // 0: scenario default
  int rounds = 10;
  std::vector<int> server_pids;
  std::vector<std::pair<std::string, int>> cpu_pids;  // name=pid: CPU share over the window
  double settle = 1.0;
  int sources = 0;
  std::string control;
  std::string broadcast_via = "ws";
  bool first_frame = false;
  bool binary = false;
  bool json = false;
  double deadline = 0;  // 0: scenario default
  std::string label;
};

[[noreturn]] void BadFlags(const std::string& problem) {
  std::fprintf(stderr, "fngate_load: %s\n(see the comment at the top of tests/load/fngate_load.cc)\n",
               problem.c_str());
  std::fflush(stderr);
  std::_Exit(2);
}

bool IsLoopback(const std::string& host) {
  boost::system::error_code ec;
  const net::ip::address_v4 address = net::ip::make_address_v4(host, ec);
  return !ec && address.to_bytes()[0] == 127;
}

double ParseDouble(const std::string& flag, const std::string& value, double min, double max) {
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || !(v >= min && v <= max)) {
    BadFlags("--" + flag + "=" + value + ": want a number in [" + std::to_string(min) + ", " +
             std::to_string(max) + "]");
  }
  return v;
}

int ParseInt(const std::string& flag, const std::string& value, int min, int max) {
  const double v = ParseDouble(flag, value, min, max);
  if (v != std::floor(v)) BadFlags("--" + flag + "=" + value + ": want an integer");
  return static_cast<int>(v);
}

// "ws://127.0.0.1:8080/echo?x=1" -> host, port, target.
void ParseUrl(Options& o) {
  constexpr std::string_view kScheme = "ws://";
  if (o.url.rfind(kScheme, 0) != 0) BadFlags("--url must start with ws://");
  const std::string rest = o.url.substr(kScheme.size());
  const std::size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  o.target = slash == std::string::npos ? "/" : rest.substr(slash);
  const std::size_t colon = authority.rfind(':');
  if (colon == std::string::npos) BadFlags("--url needs a port: ws://127.0.0.1:PORT/path");
  o.host = authority.substr(0, colon);
  o.port = static_cast<uint16_t>(ParseInt("url port", authority.substr(colon + 1), 1, 65535));
  if (!IsLoopback(o.host)) BadFlags("--url: only 127.0.0.0/8 IPv4 targets are allowed");
}

Options ParseFlags(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (!o.scenario.empty()) BadFlags("unexpected argument " + arg);
      o.scenario = arg;
      continue;
    }
    const std::size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    auto need_value = [&] {
      if (eq == std::string::npos) BadFlags("--" + name + " needs a value (--" + name + "=...)");
    };
    if (name == "binary") { o.binary = true; continue; }
    if (name == "json") { o.json = true; continue; }
    if (name == "first_frame") { o.first_frame = true; continue; }
    need_value();
    if (name == "scenario") o.scenario = value;
    else if (name == "url") o.url = value;
    else if (name == "conns") o.conns = ParseInt(name, value, 1, 200000);
    else if (name == "inflight") o.inflight = ParseInt(name, value, 1, 4096);
    else if (name == "size") o.size = ParseInt(name, value, 1, 8 << 20);
    else if (name == "warmup") o.warmup = ParseDouble(name, value, 0, 600);
    else if (name == "duration") o.duration = ParseDouble(name, value, 0.05, 3600);
    else if (name == "rate") o.rate = ParseDouble(name, value, 1, 10e6);
    else if (name == "concurrency") o.concurrency = ParseInt(name, value, 1, 100000);
    else if (name == "rounds") o.rounds = ParseInt(name, value, 1, 100000);
    else if (name == "settle") o.settle = ParseDouble(name, value, 0, 600);
    else if (name == "sources") o.sources = ParseInt(name, value, 0, 250);
    else if (name == "control") o.control = value;
    else if (name == "broadcast_via") o.broadcast_via = value;
    else if (name == "deadline") o.deadline = ParseDouble(name, value, 1, 36000);
    else if (name == "label") o.label = value;
    else if (name == "server_pid") {
      std::stringstream in(value);
      for (std::string pid; std::getline(in, pid, ',');) {
        o.server_pids.push_back(ParseInt(name, pid, 1, 1 << 30));
      }
    } else if (name == "cpu_pids") {
      std::stringstream in(value);
      for (std::string item; std::getline(in, item, ',');) {
        const std::size_t at = item.find('=');
        if (at == std::string::npos || at == 0) BadFlags("--cpu_pids wants NAME=PID,...");
        o.cpu_pids.emplace_back(item.substr(0, at), ParseInt(name, item.substr(at + 1), 1, 1 << 30));
      }
    } else {
      BadFlags("unknown flag --" + name);
    }
  }
  static const char* const kScenarios[] = {"echo", "latency", "connect", "idle", "broadcast",
                                           "push"};
  if (std::find_if(std::begin(kScenarios), std::end(kScenarios),
                   [&](const char* s) { return o.scenario == s; }) == std::end(kScenarios)) {
    BadFlags("want a scenario: echo, latency, connect, idle, broadcast or push (got '" +
             o.scenario + "')");
  }
  if (o.url.empty()) BadFlags("--url=ws://127.0.0.1:PORT/PATH is required");
  ParseUrl(o);
  o.size = std::max(o.size, 17);  // '#' and 16 hex digits of the send time
  if (o.broadcast_via != "ws" && o.broadcast_via != "control") {
    BadFlags("--broadcast_via: ws or control");
  }
  const bool needs_control =
      o.scenario == "push" || (o.scenario == "broadcast" && o.broadcast_via == "control");
  if (needs_control) {
    const std::size_t colon = o.control.rfind(':');
    if (colon == std::string::npos || !IsLoopback(o.control.substr(0, colon))) {
      BadFlags("--control=127.0.0.1:PORT (a loopback address) is required for " + o.scenario);
    }
    o.first_frame = true;  // The ids come from the `bench` function's first frame.
  }
  if (o.scenario == "idle" && o.server_pids.empty()) BadFlags("idle needs --server_pid=PID");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Report: an ordered list of fields, printed as JSON or as text.

class Report {
 public:
  void Add(const std::string& key, double value) {
    char buf[64];
    if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
      std::snprintf(buf, sizeof buf, "%.0f", value);
    } else if (std::isfinite(value)) {
      std::snprintf(buf, sizeof buf, "%.6g", value);
    } else {
      std::snprintf(buf, sizeof buf, "null");
    }
    fields_.emplace_back(key, buf);
  }
  void Add(const std::string& key, const std::string& value) {
    fields_.emplace_back(key, Quote(value));
  }
  void AddRaw(const std::string& key, const std::string& json) { fields_.emplace_back(key, json); }
  void AddBool(const std::string& key, bool value) {
    fields_.emplace_back(key, value ? "true" : "false");
  }
  void AddLatency(const std::string& key, const LatencyHistogram& h) {
    std::string json = "{";
    auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "\"count\": %" PRIu64 ", \"p50\": %.1f, \"p99\": %.1f, \"p999\": %.1f, "
                  "\"max\": %.1f, \"mean\": %.1f}",
                  h.count(), us(h.Quantile(0.5)), us(h.Quantile(0.99)), us(h.Quantile(0.999)),
                  us(h.max()), h.mean() / 1000.0);
    json += buf;
    fields_.emplace_back(key, json);
  }

  std::string Json() const {
    std::string out = "{";
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      if (i > 0) out += ", ";
      out += Quote(fields_[i].first) + ": " + fields_[i].second;
    }
    return out + "}";
  }

  std::string Text() const {
    std::string out;
    for (const auto& [key, value] : fields_) {
      out += "  " + key + std::string(key.size() < 22 ? 22 - key.size() : 1, ' ') + value + "\n";
    }
    return out;
  }

 private:
  static std::string Quote(const std::string& s) {
    std::string out = "\"";
    for (const char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += c;
      }
    }
    return out + "\"";
  }

  std::vector<std::pair<std::string, std::string>> fields_;
};

// ---------------------------------------------------------------------------------------------
// Helpers

int64_t NowNanos() {
  return duration_cast<nanoseconds>(Clock::now().time_since_epoch()).count();
}

Clock::duration Seconds(double s) {
  return duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

double SecondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Payloads are '#', 16 hex digits of the steady-clock nanoseconds they were due/sent at, then
// 'x' up to the size: the same bytes for every server, valid UTF-8 for text frames.
// Writes `nanos` as 16 hex digits at `digits`.
void WriteStampDigits(char* digits, int64_t nanos) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto v = static_cast<uint64_t>(nanos);
  for (int i = 15; i >= 0; --i, v >>= 4) digits[i] = kHex[v & 0xF];
}

class Stamper {
 public:
  explicit Stamper(int size, std::string prefix = {}) : buffer_(std::move(prefix)) {
    prefix_size_ = buffer_.size();
    buffer_ += '#';
    buffer_.append(16, '0');
    buffer_.append(static_cast<std::size_t>(size) - 17, 'x');
  }
  std::string_view Stamp(int64_t nanos) {
    WriteStampDigits(buffer_.data() + prefix_size_ + 1, nanos);
    return buffer_;
  }
  // Stamps a copy of an unprefixed payload (for calls built on other threads).
  static void Overwrite(std::string& payload, int64_t nanos) {
    WriteStampDigits(payload.data() + 1, nanos);
  }

 private:
  std::string buffer_;
  std::size_t prefix_size_ = 0;
};

// The stamp of a payload made by Stamper, or nullopt for any other frame.
std::optional<int64_t> ParseStamp(std::string_view payload) {
  if (payload.size() < 17 || payload[0] != '#') return std::nullopt;
  uint64_t v = 0;
  for (int i = 1; i <= 16; ++i) {
    const char c = payload[i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return std::nullopt;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return static_cast<int64_t>(v);
}

// Sum of VmRSS (bytes) of the given processes; nullopt if one cannot be read.
std::optional<int64_t> ReadRss(const std::vector<int>& pids) {
  int64_t total = 0;
  for (const int pid : pids) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    if (!in) return std::nullopt;
    std::string line;
    bool found = false;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) {
        total += std::atoll(line.c_str() + 6) * 1024;  // "VmRSS:   12345 kB"
        found = true;
        break;
      }
    }
    if (!found) return std::nullopt;
  }
  return total;
}

int LocalPortRange() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int lo = 32768, hi = 60999;
  in >> lo >> hi;
  return std::max(1000, hi - lo + 1);
}

// CPU seconds of a process from /proc/<pid>/stat: its own (utime + stime) and that of its
// children it has reaped (cutime + cstime).
struct ProcessTimes {
  double own = 0;
  double children = 0;
  bool kernel_thread = false;  // ksoftirqd and friends: they carry our own traffic too
};

std::optional<ProcessTimes> ReadProcessTimes(int pid) {
  static const double kTicks = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return std::nullopt;
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t paren = stat.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos || paren + 2 > stat.size()) return std::nullopt;
  // Fields after the name start at field 3; utime, stime, cutime, cstime are fields 14-17.
  const char* p = stat.c_str() + paren + 2;
  double fields[18] = {};
  for (int field = 3; field <= 17 && *p != '\0'; ++field) {
    char* end = nullptr;
    const double v = std::strtod(p, &end);
    fields[field] = end == p ? 0 : v;
    p = end == p ? p + 1 : end;
    while (*p == ' ') ++p;
  }
  constexpr uint64_t kPfKthread = 0x00200000;  // field 9, flags
  return ProcessTimes{(fields[14] + fields[15]) / kTicks, (fields[16] + fields[17]) / kTicks,
                      (static_cast<uint64_t>(fields[9]) & kPfKthread) != 0};
}

// CPU time (seconds) of this process (every thread) and of the --cpu_pids processes, so a
// report shows how busy each side was in the measured window: a server core below ~100% in a
// throughput scenario means the server was not the bottleneck (or lost its core to something
// else), a load core near 100% means the tool was.
class CpuMeter {
 public:
  explicit CpuMeter(const std::vector<std::pair<std::string, int>>& pids) : pids_(pids) {}

  void Start() {
    start_ = Clock::now();
    start_cpu_ = Sample();
  }
  void Stop() {
    stop_ = Clock::now();
    stop_cpu_ = Sample();
  }
  // "cpu": {"load": 0.93, "fngate": 0.61, ..., "other": 0.02}: CPU seconds per wall second of
  // the window; "other" is what the rest of the machine used meanwhile, in cores.
  void AddTo(Report& r) const {
    if (start_cpu_.empty() || stop_cpu_.empty()) return;
    const double wall = std::chrono::duration<double>(stop_ - start_).count();
    std::string json = "{";
    for (std::size_t i = 0; i < start_cpu_.size() && i < stop_cpu_.size(); ++i) {
      const double share = (stop_cpu_[i].second - start_cpu_[i].second) / wall;
      if (start_cpu_[i].first == "others") {
        // Everything else that ran on the machine meanwhile, in cores. Processes that started
        // and ended inside the window without a parent reaping them are missed.
        json += ", \"other\": ";
        json += std::isfinite(share) ? std::to_string(std::round(std::max(0.0, share) * 1000) / 1000)
                                     : "null";
        continue;
      }
      char buf[128];
      std::snprintf(buf, sizeof buf, "%s\"%s\": %s", i == 0 ? "" : ", ",
                    start_cpu_[i].first.c_str(),
                    std::isfinite(share) ? std::to_string(std::round(share * 1000) / 1000).c_str()
                                         : "null");
      json += buf;
    }
    r.AddRaw("cpu", json + "}");
  }

  // name -> seconds; "load" is this process.
  std::vector<std::pair<std::string, double>> Sample() const {
    std::vector<std::pair<std::string, double>> out;
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    out.emplace_back("load", usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 +
                                 usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6);
    for (const auto& [name, pid] : pids_) {
      const std::optional<ProcessTimes> times = ReadProcessTimes(pid);
      out.emplace_back(name, times ? times->own : NAN);
    }
    // Everything else that ran: every other process's CPU time, its reaped children's included
    // (a compiler's time moves into its make or ninja when it exits). /proc/stat's per-core
    // totals would be simpler, but they are sampled by the tick and disagree with per-process
    // times by tenths of a core on this kind of machine.
    double others = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      const int pid = std::atoi(name.c_str());
      if (pid == self_pid_ || std::any_of(pids_.begin(), pids_.end(),
                                          [pid](const auto& p) { return p.second == pid; })) {
        continue;
      }
      const std::optional<ProcessTimes> times = ReadProcessTimes(pid);
      if (times && !times->kernel_thread) others += times->own + times->children;
    }
    out.emplace_back("others", others);
    return out;
  }

  const std::vector<std::pair<std::string, int>>& pids_;
  const int self_pid_ = static_cast<int>(getpid());
  Clock::time_point start_, stop_;
  std::vector<std::pair<std::string, double>> start_cpu_, stop_cpu_;
};

// ---------------------------------------------------------------------------------------------
// Scenario: what every scenario shares. Opening connections (bounded concurrency, optional
// first frame), running the io_context until a condition or a deadline, closing everything.

class Scenario : public WsLoadHandler {
 public:
  explicit Scenario(const Options& options)
      : options_(options), guard_(net::make_work_guard(ioc_)), cpu_(options.cpu_pids) {
    boost::system::error_code ec;
    server_ = tcp::endpoint(net::ip::make_address_v4(options.host, ec), options.port);
    host_header_ = options.host + ":" + std::to_string(options.port);
  }
  ~Scenario() override = default;

  // Runs the scenario, filling `report`; false when it could not measure (report has "error").
  virtual bool Run(Report& report) = 0;

  // WsLoadHandler
  void OnOpen(WsLoadConnection& conn) final {
    ++opened_;
    if (!options_.first_frame) MarkReady(conn);
    OnConnectionOpen(conn);
  }
  void OnMessage(WsLoadConnection& conn, std::string_view payload, bool binary) final {
    if (!conn.ready) {  // The server's first frame: the connection id.
      conn.tag.assign(payload);
      MarkReady(conn);
      return;
    }
    OnReadyMessage(conn, payload, binary);
  }
  void OnClosed(WsLoadConnection& conn, CloseKind kind, std::string_view why) final {
    ++closed_;
    if (kind == CloseKind::kConnectFailed || (!conn.ready && kind != CloseKind::kAborted)) {
      ++open_failures_;
      NoteError(why);
      if (opening_ && !conn.ready) {
        --opens_in_flight_;
        PumpOpens();
      }
    } else if (kind == CloseKind::kError) {
      ++errors_;
      NoteError(why);
    } else if (kind == CloseKind::kClean && !closing_) {
      ++server_closes_;  // The server ended a connection we did not ask it to.
      NoteError("server closed the connection");
    }
    OnConnectionClosed(conn, kind);
  }

 protected:
  virtual void OnConnectionOpen(WsLoadConnection& conn) {}
  virtual void OnReadyMessage(WsLoadConnection& conn, std::string_view payload, bool binary) {}
  virtual void OnConnectionClosed(WsLoadConnection& conn, CloseKind kind) {}

  // Runs the io_context until `done()` or `deadline`; false on the deadline.
  bool RunUntil(const std::function<bool()>& done, Clock::time_point deadline) {
    while (!done()) {
      const Clock::time_point now = Clock::now();
      if (now >= deadline) return false;
      ioc_.run_for(std::min<Clock::duration>(std::chrono::milliseconds(2), deadline - now));
    }
    return true;
  }
  void RunUntilTime(Clock::time_point until) {
    RunUntil([] { return false; }, until);
  }

  std::optional<net::ip::address_v4> SourceFor(std::size_t index) const {
    if (sources_ <= 0) return std::nullopt;
    return net::ip::address_v4((127u << 24) | (2u + static_cast<uint32_t>(index % sources_)));
  }

  std::shared_ptr<WsLoadConnection> NewConnection(std::size_t index, std::size_t read_chunk) {
    auto conn = std::make_shared<WsLoadConnection>(ioc_, *this, index, read_chunk);
    conn->Start(server_, SourceFor(index), host_header_, options_.target);
    return conn;
  }

  // Opens `n` connections with at most `concurrency` upgrades in flight; waits until each is
  // ready (open, and its first frame read with --first_frame) or failed, at most `timeout`.
  // Returns the number ready.
  int OpenAll(int n, int concurrency, std::size_t read_chunk, Clock::duration timeout) {
    conns_.assign(static_cast<std::size_t>(n), nullptr);
    open_target_ = n;
    open_concurrency_ = std::max(1, concurrency);
    read_chunk_ = read_chunk;
    opening_ = true;
    PumpOpens();
    const bool all = RunUntil([this] { return ready_ + open_failures_ >= open_target_; },
                              Clock::now() + timeout);
    opening_ = false;
    if (!all) NoteError("timed out opening connections");
    return ready_;
  }

  // Close handshake on every connection, then abort what is left after `timeout`.
  void CloseAll(Clock::duration timeout) {
    closing_ = true;
    for (auto& conn : conns_) {
      if (conn != nullptr && conn->is_open()) conn->Close(1000);
    }
    RunUntil(
        [this] {
          return std::all_of(conns_.begin(), conns_.end(),
                             [](const auto& c) { return c == nullptr || c->is_closed(); });
        },
        Clock::now() + timeout);
    for (auto& conn : conns_) {
      if (conn != nullptr) conn->Abort();
    }
    ioc_.poll();  // Let cancelled operations release their connections.
    conns_.clear();
  }

  void NoteError(std::string_view why) {
    if (!why.empty() && first_error_.empty()) first_error_ = why;
  }

  // Fields every scenario reports.
  void AddCommon(Report& r) const {
    r.Add("scenario", options_.scenario);
    if (!options_.label.empty()) r.Add("label", options_.label);
    r.Add("url", "ws://" + host_header_ + options_.target);
  }
  void AddErrors(Report& r) const {
    cpu_.AddTo(r);
    r.Add("open_failures", open_failures_);
    r.Add("errors", errors_);
    r.Add("server_closes", server_closes_);
    if (!first_error_.empty()) r.Add("first_error", first_error_);
  }

  const Options& options_;
  net::io_context ioc_{1};
  net::executor_work_guard<net::io_context::executor_type> guard_;
  tcp::endpoint server_;
  std::string host_header_;
  int sources_ = 0;
  std::vector<std::shared_ptr<WsLoadConnection>> conns_;
  std::vector<WsLoadConnection*> ready_conns_;  // In the order they became ready.
  int opened_ = 0;
  int ready_ = 0;
  int open_failures_ = 0;
  int closed_ = 0;
  int errors_ = 0;
  int server_closes_ = 0;
  bool closing_ = false;  // Closes from now on are ours.
  bool track_ready_ = true;  // Keep ready_conns_ (not for short-lived connections).
  std::string first_error_;
  CpuMeter cpu_;

 private:
  void MarkReady(WsLoadConnection& conn) {
    conn.ready = true;
    ++ready_;
    if (track_ready_) ready_conns_.push_back(&conn);
    if (opening_) {
      --opens_in_flight_;
      PumpOpens();
    }
  }

  void PumpOpens() {
    while (opening_ && opens_in_flight_ < open_concurrency_ && next_open_ < open_target_) {
      const std::size_t i = static_cast<std::size_t>(next_open_++);
      ++opens_in_flight_;
      conns_[i] = NewConnection(i, read_chunk_);
    }
  }

  bool opening_ = false;
  int open_target_ = 0;
  int open_concurrency_ = 1;
  int opens_in_flight_ = 0;
  int next_open_ = 0;
  std::size_t read_chunk_ = 16384;
};

// ---------------------------------------------------------------------------------------------
// echo: N connections, W messages in flight each.

class EchoScenario final : public Scenario {
 public:
  explicit EchoScenario(const Options& o) : Scenario(o), stamper_(o.size) {}

  bool Run(Report& r) override {
    AddCommon(r);
    r.Add("conns", options_.conns);
    r.Add("inflight", options_.inflight);
    r.Add("size", options_.size);
    const int ready = OpenAll(options_.conns, options_.concurrency > 0 ? options_.concurrency : 256,
                              16384, Seconds(30 + options_.conns / 200.0));
    if (ready < options_.conns) {
      AddErrors(r);
      r.Add("error", "only " + std::to_string(ready) + " of " + std::to_string(options_.conns) +
                         " connections opened");
      CloseAll(Seconds(3));
      return false;
    }
    const Clock::time_point start = Clock::now();
    warm_end_ = start + Seconds(options_.warmup);
    end_ = warm_end_ + Seconds(options_.duration);
    sending_ = true;
    for (WsLoadConnection* conn : ready_conns_) {
      for (int w = 0; w < options_.inflight; ++w) SendOne(*conn);
    }
    RunUntilTime(warm_end_);
    cpu_.Start();
    RunUntilTime(end_);
    cpu_.Stop();
    sending_ = false;
    const bool drained = RunUntil([this] { return outstanding_ <= 0; }, end_ + Seconds(2));
    CloseAll(Seconds(3));

    const double seconds = SecondsBetween(warm_end_, end_);
    r.Add("msgs_per_s", measured_ / seconds);
    r.Add("throughput", measured_ / seconds);
    r.Add("measured_s", seconds);
    r.AddLatency("latency_us", latency_);
    r.Add("sent", static_cast<double>(sent_));
    r.Add("received", static_cast<double>(received_));
    r.Add("other_frames", static_cast<double>(other_frames_));
    r.AddBool("drained", drained);
    AddErrors(r);
    if (measured_ == 0) {
      r.Add("error", "no echo received in the measured window");
      return false;
    }
    return true;
  }

 private:
  void SendOne(WsLoadConnection& conn) {
    ++sent_;
    ++outstanding_;
    conn.Send(stamper_.Stamp(NowNanos()), options_.binary);
  }

  void OnReadyMessage(WsLoadConnection& conn, std::string_view payload, bool) override {
    const std::optional<int64_t> stamp = ParseStamp(payload);
    if (!stamp) {
      ++other_frames_;
      return;
    }
    ++received_;
    --outstanding_;
    const Clock::time_point now = Clock::now();
    if (now >= warm_end_ && now < end_) {
      ++measured_;
      latency_.Record(now.time_since_epoch().count() - *stamp);
    }
    if (sending_ && now < end_) SendOne(conn);
  }

  void OnConnectionClosed(WsLoadConnection&, CloseKind) override {
    // A lost connection takes its messages with it; do not wait for them.
    if (sending_) outstanding_ -= options_.inflight;
  }

  Stamper stamper_;
  Clock::time_point warm_end_, end_;
  bool sending_ = false;
  int64_t outstanding_ = 0;
  uint64_t sent_ = 0, received_ = 0, measured_ = 0, other_frames_ = 0;
  LatencyHistogram latency_;
};

// ---------------------------------------------------------------------------------------------
// latency: open loop at a fixed total rate.

class LatencyScenario final : public Scenario {
 public:
  explicit LatencyScenario(const Options& o) : Scenario(o), stamper_(o.size), timer_(ioc_) {}

  bool Run(Report& r) override {
    AddCommon(r);
    r.Add("conns", options_.conns);
    r.Add("rate", options_.rate);
    r.Add("size", options_.size);
    const int ready = OpenAll(options_.conns, options_.concurrency > 0 ? options_.concurrency : 256,
                              16384, Seconds(30 + options_.conns / 200.0));
    if (ready < options_.conns) {
      AddErrors(r);
      r.Add("error", "only " + std::to_string(ready) + " connections opened");
      CloseAll(Seconds(3));
      return false;
    }
    interval_ = nanoseconds(static_cast<int64_t>(1e9 / options_.rate));
    start_ = Clock::now();
    warm_end_ = start_ + Seconds(options_.warmup);
    end_ = warm_end_ + Seconds(options_.duration);
    next_due_ = start_;
    Tick();
    RunUntilTime(warm_end_);
    cpu_.Start();
    RunUntilTime(end_);
    cpu_.Stop();
    // What was sent in the window is waited for (bounded): a late answer is a latency too.
    const bool drained = RunUntil([this] { return received_ >= sent_; }, end_ + Seconds(2));
    timer_.cancel();
    CloseAll(Seconds(3));

    const double seconds = SecondsBetween(warm_end_, end_);
    r.Add("sent_per_s", measured_sent_ / seconds);
    r.Add("throughput", measured_ / seconds);
    r.Add("measured_s", seconds);
    r.AddLatency("latency_us", latency_);
    r.Add("sent", static_cast<double>(sent_));
    r.Add("received", static_cast<double>(received_));
    r.Add("late_sends", static_cast<double>(late_sends_));
    r.AddBool("drained", drained);
    AddErrors(r);
    if (measured_ == 0) {
      r.Add("error", "no echo received for the measured window");
      return false;
    }
    return true;
  }

 private:
  // Sends every message due by now, each stamped with the time it was due, then sleeps until
  // the next one is due.
  void Tick() {
    const Clock::time_point now = Clock::now();
    int burst = 0;
    while (next_due_ <= now && next_due_ < end_) {
      WsLoadConnection* conn = ready_conns_[next_conn_++ % ready_conns_.size()];
      conn->Send(stamper_.Stamp(next_due_.time_since_epoch().count()), options_.binary);
      ++sent_;
      if (next_due_ >= warm_end_) ++measured_sent_;
      if (++burst > 1) ++late_sends_;
      next_due_ += interval_;
    }
    if (next_due_ >= end_) return;
    timer_.expires_at(next_due_);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Tick();
    });
  }

  void OnReadyMessage(WsLoadConnection&, std::string_view payload, bool) override {
    const std::optional<int64_t> stamp = ParseStamp(payload);
    if (!stamp) return;
    ++received_;
    const int64_t due = *stamp;
    if (due >= warm_end_.time_since_epoch().count() && due < end_.time_since_epoch().count()) {
      ++measured_;
      latency_.Record(Clock::now().time_since_epoch().count() - due);
    }
  }

  Stamper stamper_;
  net::steady_timer timer_;
  Clock::duration interval_{};
  Clock::time_point start_, warm_end_, end_, next_due_;
  std::size_t next_conn_ = 0;
  uint64_t sent_ = 0, measured_sent_ = 0, received_ = 0, measured_ = 0, late_sends_ = 0;
  LatencyHistogram latency_;
};

// ---------------------------------------------------------------------------------------------
// connect: C loops of open + close.

class ConnectScenario final : public Scenario {
 public:
  explicit ConnectScenario(const Options& o) : Scenario(o) {
    sources_ = o.sources;
    track_ready_ = false;
  }

  bool Run(Report& r) override {
    AddCommon(r);
    const int concurrency = options_.concurrency > 0 ? options_.concurrency : 32;
    r.Add("concurrency", concurrency);
    r.Add("sources", std::max(1, sources_));
    closing_ = true;  // Every close here is ours.
    start_ = Clock::now();
    warm_end_ = start_ + Seconds(options_.warmup);
    end_ = warm_end_ + Seconds(options_.duration);
    started_at_.assign(static_cast<std::size_t>(concurrency), {});
    conns_.assign(static_cast<std::size_t>(concurrency), nullptr);
    for (int slot = 0; slot < concurrency; ++slot) StartSlot(static_cast<std::size_t>(slot));
    RunUntilTime(warm_end_);
    cpu_.Start();
    RunUntilTime(end_);
    cpu_.Stop();
    stopping_ = true;
    CloseAll(Seconds(3));

    const double seconds = SecondsBetween(warm_end_, end_);
    r.Add("conns_per_s", measured_ / seconds);
    r.Add("throughput", measured_ / seconds);
    r.Add("measured_s", seconds);
    r.AddLatency("latency_us", upgrade_latency_);  // TCP connect + upgrade (connect event)
    r.Add("completed", static_cast<double>(completed_));
    r.Add("failed", static_cast<double>(failed_));
    AddErrors(r);
    if (measured_ == 0) {
      r.Add("error", "no connection completed in the measured window");
      return false;
    }
    return true;
  }

 private:
  void StartSlot(std::size_t slot) {
    started_at_[slot] = Clock::now();
    // The slot is the index; a connection per cycle, spread over the sources round robin.
    auto conn = std::make_shared<WsLoadConnection>(ioc_, *this, slot, 4096);
    conns_[slot] = conn;
    conn->Start(server_, SourceFor(cycle_++), host_header_, options_.target);
  }

  void OnConnectionOpen(WsLoadConnection& conn) override {
    const Clock::time_point now = Clock::now();
    if (now >= warm_end_ && now < end_) {
      upgrade_latency_.Record(duration_cast<nanoseconds>(now - started_at_[conn.index()]).count());
    }
    conn.Close(1000);
  }

  void OnConnectionClosed(WsLoadConnection& conn, CloseKind kind) override {
    const Clock::time_point now = Clock::now();
    if (kind == CloseKind::kClean) {
      ++completed_;
      if (now >= warm_end_ && now < end_) ++measured_;
    } else if (kind != CloseKind::kAborted) {
      ++failed_;
    }
    // The next cycle of this slot starts from a fresh handler turn (the old one is unwinding).
    if (!stopping_ && now < end_ && failed_ < 100000) {
      const std::size_t slot = conn.index();
      net::post(ioc_, [this, slot] {
        if (!stopping_) StartSlot(slot);
      });
    }
  }

  Clock::time_point start_, warm_end_, end_;
  std::vector<Clock::time_point> started_at_;
  std::size_t cycle_ = 0;
  bool stopping_ = false;
  uint64_t completed_ = 0, measured_ = 0, failed_ = 0;
  LatencyHistogram upgrade_latency_;
};

// ---------------------------------------------------------------------------------------------
// idle: N idle connections, the server's RSS before and after.

class IdleScenario final : public Scenario {
 public:
  explicit IdleScenario(const Options& o) : Scenario(o), stamper_(o.size) {
    sources_ = o.sources;
    if (sources_ == 0) {
      // Each source address gives (a safe share of) the local port range per server port.
      const int per_source = LocalPortRange() * 3 / 4;
      if (o.conns > per_source) sources_ = (o.conns + per_source - 1) / per_source;
    }
  }

  bool Run(Report& r) override {
    AddCommon(r);
    r.Add("conns", options_.conns);
    r.Add("sources", std::max(1, sources_));
    std::string pids;
    for (const int pid : options_.server_pids) pids += (pids.empty() ? "" : ",") + std::to_string(pid);
    r.Add("server_pids", pids);
    const std::optional<int64_t> before = ReadRss(options_.server_pids);
    if (!before) {
      r.Add("error", "cannot read VmRSS of --server_pid " + pids);
      return false;
    }
    const Clock::time_point open_start = Clock::now();
    const int ready = OpenAll(options_.conns, options_.concurrency > 0 ? options_.concurrency : 128,
                              2048, Seconds(60 + options_.conns / 200.0));
    const double open_seconds = SecondsBetween(open_start, Clock::now());
    cpu_.Start();
    RunUntilTime(Clock::now() + Seconds(options_.settle));
    cpu_.Stop();
    const std::optional<int64_t> after = ReadRss(options_.server_pids);

    // One message through a sample of them (evenly spread) proves they are alive.
    const int sample = std::min<int>(100, static_cast<int>(ready_conns_.size()));
    for (int i = 0; i < sample; ++i) {
      WsLoadConnection* conn = ready_conns_[static_cast<std::size_t>(i) * ready_conns_.size() /
                                            static_cast<std::size_t>(sample)];
      conn->Send(stamper_.Stamp(NowNanos()), options_.binary);
    }
    RunUntil([&] { return echoed_ >= sample; }, Clock::now() + Seconds(10));
    const int still_open = static_cast<int>(std::count_if(
        conns_.begin(), conns_.end(), [](const auto& c) { return c != nullptr && c->is_open(); }));
    CloseAll(Seconds(15));

    r.Add("held", ready);
    r.Add("open_s", open_seconds);
    r.Add("rss_before_bytes", static_cast<double>(*before));
    if (after) r.Add("rss_after_bytes", static_cast<double>(*after));
    const double per_conn =
        after && ready > 0 ? static_cast<double>(*after - *before) / ready : NAN;
    r.Add("bytes_per_conn", per_conn);
    r.Add("sample", sample);
    r.Add("sample_alive", echoed_);
    r.Add("open_at_end", still_open);
    AddErrors(r);
    if (ready < options_.conns || !after || echoed_ < sample) {
      r.Add("error", "held " + std::to_string(ready) + " of " + std::to_string(options_.conns) +
                         ", sample alive " + std::to_string(echoed_) + " of " +
                         std::to_string(sample));
      return false;
    }
    return true;
  }

 private:
  void OnReadyMessage(WsLoadConnection&, std::string_view payload, bool) override {
    if (ParseStamp(payload)) ++echoed_;
  }

  Stamper stamper_;
  int echoed_ = 0;
};

// ---------------------------------------------------------------------------------------------
// broadcast: one message to N receivers, K times.

class BroadcastScenario final : public Scenario {
 public:
  explicit BroadcastScenario(const Options& o)
      : Scenario(o),
        via_control_(o.broadcast_via == "control"),
        stamper_(o.size, via_control_ ? "" : "BROADCAST ") {
    sources_ = o.sources;
  }

  bool Run(Report& r) override {
    AddCommon(r);
    r.Add("conns", options_.conns);
    r.Add("rounds", options_.rounds);
    r.Add("size", options_.size);
    r.Add("via", options_.broadcast_via);
    // Receivers, plus (via ws) the connection that asks for the broadcasts, opened last.
    const int total = options_.conns + (via_control_ ? 0 : 1);
    const int ready = OpenAll(total, options_.concurrency > 0 ? options_.concurrency : 128, 4096,
                              Seconds(60 + total / 200.0));
    if (ready < total) {
      AddErrors(r);
      r.Add("error", "only " + std::to_string(ready) + " of " + std::to_string(total) +
                         " connections opened");
      CloseAll(Seconds(10));
      return false;
    }
    std::unique_ptr<v1::GatewayControl::Stub> stub;
    v1::SendRequest request;
    if (via_control_) {
      auto channel = grpc::CreateChannel(options_.control, grpc::InsecureChannelCredentials());
      if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
        r.Add("error", "cannot reach the control service at " + options_.control);
        CloseAll(Seconds(10));
        return false;
      }
      stub = v1::GatewayControl::NewStub(channel);
      for (WsLoadConnection* conn : ready_conns_) {
        request.mutable_target()->add_connection_ids(conn->tag);
      }
    } else {
      sender_ = ready_conns_.back();
    }

    const auto round_timeout = Seconds(10 + options_.conns / 1000.0);
    int rounds_done = 0;
    uint64_t expected = 0;
    std::atomic<int> rpc_failures{0};
    for (int round = 0; round <= options_.rounds; ++round) {  // round 0: warm-up
      expected += static_cast<uint64_t>(options_.conns);
      const Clock::time_point sent_at = Clock::now();
      if (round == 1) {
        first_send_ = sent_at;
        cpu_.Start();
      }
      measuring_ = round >= 1;
      std::atomic<bool> rpc_done{!via_control_};
      grpc::ClientContext context;
      v1::SendResponse response;
      if (via_control_) {
        if (options_.binary) {
          request.mutable_payload()->set_binary(std::string(stamper_.Stamp(NowNanos())));
        } else {
          request.mutable_payload()->set_text(std::string(stamper_.Stamp(NowNanos())));
        }
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        stub->async()->Send(&context, &request, &response,
                            [&rpc_done, &rpc_failures](grpc::Status status) {
                              if (!status.ok()) rpc_failures.fetch_add(1);
                              rpc_done.store(true);
                            });
      } else {
        sender_->Send(stamper_.Stamp(NowNanos()), false);
      }
      const bool complete =
          RunUntil([&] { return received_ >= expected && rpc_done.load(); }, sent_at + round_timeout);
      if (!rpc_done.load()) {
        context.TryCancel();
        // The callback references this frame: wait for it (bounded by the RPC deadline).
        RunUntil([&] { return rpc_done.load(); }, Clock::now() + Seconds(35));
      }
      if (!complete) {
        NoteError("round " + std::to_string(round) + " timed out: " + std::to_string(received_) +
                  " of " + std::to_string(expected) + " frames");
        break;
      }
      if (round >= 1) ++rounds_done;
    }
    cpu_.Stop();
    CloseAll(Seconds(15));

    const double seconds =
        rounds_done > 0 ? SecondsBetween(first_send_, last_receipt_) : std::nan("");
    r.Add("deliveries_per_s", measured_ / seconds);
    r.Add("throughput", measured_ / seconds);
    r.Add("measured_s", seconds);
    r.Add("rounds_done", rounds_done);
    r.AddLatency("latency_us", latency_);
    r.Add("received", static_cast<double>(received_));
    r.Add("rpc_failures", rpc_failures.load());
    AddErrors(r);
    if (rounds_done < options_.rounds) {
      r.Add("error", "completed " + std::to_string(rounds_done) + " of " +
                         std::to_string(options_.rounds) + " rounds");
      return false;
    }
    return true;
  }

 private:
  void OnReadyMessage(WsLoadConnection& conn, std::string_view payload, bool) override {
    if (&conn == sender_) return;
    const std::optional<int64_t> stamp = ParseStamp(payload);
    if (!stamp) return;
    ++received_;
    if (measuring_) {
      const Clock::time_point now = Clock::now();
      ++measured_;
      last_receipt_ = now;
      latency_.Record(now.time_since_epoch().count() - *stamp);
    }
  }

  const bool via_control_;
  Stamper stamper_;
  WsLoadConnection* sender_ = nullptr;
  bool measuring_ = false;
  Clock::time_point first_send_, last_receipt_;
  uint64_t received_ = 0, measured_ = 0;
  LatencyHistogram latency_;
};

// ---------------------------------------------------------------------------------------------
// push: GatewayControl.Send to one connection at a time, W in flight.

class PushScenario final : public Scenario {
 public:
  explicit PushScenario(const Options& o) : Scenario(o) { sources_ = o.sources; }

  bool Run(Report& r) override {
    AddCommon(r);
    r.Add("conns", options_.conns);
    r.Add("inflight", options_.inflight);
    r.Add("size", options_.size);
    const int ready = OpenAll(options_.conns, options_.concurrency > 0 ? options_.concurrency : 128,
                              16384, Seconds(30 + options_.conns / 200.0));
    if (ready < options_.conns) {
      AddErrors(r);
      r.Add("error", "only " + std::to_string(ready) + " connections opened");
      CloseAll(Seconds(5));
      return false;
    }
    auto channel = grpc::CreateChannel(options_.control, grpc::InsecureChannelCredentials());
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      r.Add("error", "cannot reach the control service at " + options_.control);
      CloseAll(Seconds(5));
      return false;
    }
    stub_ = v1::GatewayControl::NewStub(channel);
    for (WsLoadConnection* conn : ready_conns_) ids_.push_back(conn->tag);
    template_payload_ = std::string(Stamper(options_.size).Stamp(0));

    const Clock::time_point start = Clock::now();
    warm_end_ = start + Seconds(options_.warmup);
    end_ = warm_end_ + Seconds(options_.duration);
    issuing_.store(true);
    for (int i = 0; i < options_.inflight; ++i) {
      in_flight_.fetch_add(1);
      Issue();
    }
    RunUntilTime(warm_end_);
    cpu_.Start();
    RunUntilTime(end_);
    cpu_.Stop();
    issuing_.store(false);
    // Every call has a 5 s deadline, so this wait ends; pushes already answered get read.
    const bool drained = RunUntil([this] { return in_flight_.load() == 0; }, end_ + Seconds(8));
    RunUntil([this] { return received_ >= calls_ok_.load(); }, Clock::now() + Seconds(2));
    CloseAll(Seconds(5));

    const double seconds = SecondsBetween(warm_end_, end_);
    r.Add("pushes_per_s", measured_ / seconds);
    r.Add("throughput", measured_ / seconds);
    r.Add("measured_s", seconds);
    r.AddLatency("latency_us", latency_);
    r.Add("calls", static_cast<double>(calls_.load()));
    r.Add("calls_failed", static_cast<double>(calls_failed_.load()));
    r.Add("not_delivered", static_cast<double>(not_delivered_.load()));
    r.Add("received", static_cast<double>(received_));
    r.AddBool("drained", drained);
    AddErrors(r);
    if (!drained) {
      // Calls still pending reference this object: leave without destroying it.
      r.Add("error", "control calls still pending after their deadline");
      r.AddBool("ok", false);
      std::printf("%s\n", options_.json ? r.Json().c_str() : r.Text().c_str());
      std::fflush(stdout);
      std::_Exit(1);
    }
    if (measured_ == 0) {
      r.Add("error", "no push received in the measured window");
      return false;
    }
    return true;
  }

 private:
  struct Call {
    grpc::ClientContext context;
    v1::SendRequest request;
    v1::SendResponse response;
  };

  // Runs on this thread at start, then on gRPC's threads as calls finish.
  void Issue() {
    if (!issuing_.load()) {
      in_flight_.fetch_sub(1);
      return;
    }
    auto* call = new Call;
    const uint64_t n = calls_.fetch_add(1);
    call->request.mutable_target()->add_connection_ids(ids_[n % ids_.size()]);
    std::string payload = template_payload_;
    Stamper::Overwrite(payload, NowNanos());
    if (options_.binary) {
      call->request.mutable_payload()->set_binary(std::move(payload));
    } else {
      call->request.mutable_payload()->set_text(std::move(payload));
    }
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    stub_->async()->Send(&call->context, &call->request, &call->response,
                         [this, call](grpc::Status status) {
                           if (!status.ok()) {
                             calls_failed_.fetch_add(1);
                           } else if (call->response.delivered() != 1) {
                             not_delivered_.fetch_add(1);
                           } else {
                             calls_ok_.fetch_add(1);
                           }
                           delete call;
                           Issue();
                         });
  }

  void OnReadyMessage(WsLoadConnection&, std::string_view payload, bool) override {
    const std::optional<int64_t> stamp = ParseStamp(payload);
    if (!stamp) return;
    ++received_;
    const Clock::time_point now = Clock::now();
    if (now >= warm_end_ && now < end_) {
      ++measured_;
      latency_.Record(now.time_since_epoch().count() - *stamp);
    }
  }

  std::unique_ptr<v1::GatewayControl::Stub> stub_;
  std::vector<std::string> ids_;
  std::string template_payload_;
  Clock::time_point warm_end_, end_;
  std::atomic<bool> issuing_{false};
  std::atomic<int> in_flight_{0};
  std::atomic<uint64_t> calls_{0}, calls_ok_{0}, calls_failed_{0}, not_delivered_{0};
  uint64_t received_ = 0, measured_ = 0;
  LatencyHistogram latency_;
};

// ---------------------------------------------------------------------------------------------

// Ends the process if the run outlives its deadline: the tool must never hang a script.
class Watchdog {
 public:
  explicit Watchdog(double seconds) {
    thread_ = std::thread([this, seconds] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return done_; })) {
        std::fprintf(stderr, "fngate_load: global deadline of %.0f s passed; giving up\n", seconds);
        std::fflush(stderr);
        std::_Exit(3);
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

double DefaultDeadline(const Options& o) {
  const double open = 30 + o.conns / 100.0;
  if (o.scenario == "broadcast") return open + 2 * (o.rounds + 1) * (10 + o.conns / 1000.0) + 60;
  if (o.scenario == "idle") return open + o.settle + 60;
  return open + o.warmup + o.duration + 45;
}

void RaiseFileLimit(int needed) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur != RLIM_INFINITY && static_cast<rlim_t>(needed) > limit.rlim_cur) {
    BadFlags(std::to_string(needed) + " descriptors needed, the limit is " +
             std::to_string(limit.rlim_cur) + " (ulimit -n)");
  }
}

}  // namespace

}  // namespace fngate::load

int main(int argc, char** argv) {
  using namespace fngate::load;
  const Options options = ParseFlags(argc, argv);
  RaiseFileLimit(options.conns + 64);
  Watchdog watchdog(options.deadline > 0 ? options.deadline : DefaultDeadline(options));

  std::unique_ptr<Scenario> scenario;
  if (options.scenario == "echo") scenario = std::make_unique<EchoScenario>(options);
  else if (options.scenario == "latency") scenario = std::make_unique<LatencyScenario>(options);
  else if (options.scenario == "connect") scenario = std::make_unique<ConnectScenario>(options);
  else if (options.scenario == "idle") scenario = std::make_unique<IdleScenario>(options);
  else if (options.scenario == "broadcast") scenario = std::make_unique<BroadcastScenario>(options);
  else scenario = std::make_unique<PushScenario>(options);

  Report report;
  const bool ok = scenario->Run(report);
  report.AddBool("ok", ok);
  if (options.json) {
    std::printf("%s\n", report.Json().c_str());
  } else {
    std::printf("fngate_load %s: %s\n%s", options.scenario.c_str(), ok ? "ok" : "FAILED",
                report.Text().c_str());
  }
  std::fflush(stdout);
  scenario.reset();
  return ok ? 0 : 1;
}
