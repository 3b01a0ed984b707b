// fngate_soak: the client side of the soak and chaos run (tests/soak/run.sh). Holds --conns
// connections spread over one or more gateways, each living a random --life_min..--life_max
// seconds before it closes and a new one takes its slot (churn); sends --rate messages per
// second over them, each asking for an ack; then stops sending, waits for the answers, closes
// everything and writes what it saw. Gateways and workers may be killed, drained and restarted
// under it meanwhile: a connection that ends is replaced, a gateway that refuses is retried.
//
//   fngate_soak --gateways=127.0.0.1:8080,127.0.0.1:8090 --path=/soak --conns=2000
//               --rate=500 --duration=300 --out=DIR
//
// Protocol, per connection, from its first frame: it offers the fngate.v1 subprotocol; an
// `open` frame means envelope: messages are {"type":"message","data":"s<n>","ack":<n>} and the
// `ack` frames answer them. Any other first frame (the `bench` function's connection id on a
// raw connection) means raw: messages are "s<n>" and the echo counts as the ack. <n> counts
// the connection's messages from 1, which is the `seq` the worker logs for it.
//
// Output in --out: client.log (one `OPEN <conn>` per connection the gateway accepted and named,
// one `ACKOK <conn> <seq>` per message acknowledged OK) and summary.json (counts). Exit codes:
// 0 ran, 2 bad flags, 3 the --deadline (default duration + 120 s) passed.
//
// One thread runs every connection; the loops are bounded in count and time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "tests/load/ws_load_connection.h"

namespace fngate::soak {
namespace {

namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using load::CloseKind;
using load::WsLoadConnection;

constexpr auto kTick = std::chrono::milliseconds(10);

struct Options {
  std::vector<tcp::endpoint> gateways;
  std::string path = "/soak";
  int conns = 1000;
  double rate = 200;
  double duration = 60;
  double life_min = 5;
  double life_max = 30;
  int max_unacked = 4;
  int concurrency = 200;
  double settle = 15;  // After --duration: time for answers, then for the closes.
  double deadline = 0;
  std::string out = ".";
};

[[noreturn]] void BadFlags(const std::string& problem) {
  std::fprintf(stderr, "fngate_soak: %s (see the top of tests/soak/fngate_soak.cc)\n",
               problem.c_str());
  std::exit(2);
}

double Number(const std::string& flag, const std::string& value, double min, double max) {
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || !(v >= min && v <= max)) {
    BadFlags("--" + flag + "=" + value + ": want a number in [" + std::to_string(min) + ", " +
             std::to_string(max) + "]");
  }
  return v;
}

Options ParseFlags(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) BadFlags("want --flag=value, got " + arg);
    const std::string name = arg.substr(2, eq - 2);
    const std::string value = arg.substr(eq + 1);
    if (name == "gateways") {
      std::stringstream in(value);
      for (std::string item; std::getline(in, item, ',');) {
        const size_t colon = item.rfind(':');
        boost::system::error_code ec;
        const auto address = net::ip::make_address_v4(item.substr(0, colon), ec);
        if (colon == std::string::npos || ec || address.to_bytes()[0] != 127) {
          BadFlags("--gateways: want 127.x.x.x:PORT,..., got " + item);
        }
        o.gateways.emplace_back(address, static_cast<uint16_t>(
                                             Number("gateways port", item.substr(colon + 1), 1, 65535)));
      }
    } else if (name == "path") {
      if (value.empty() || value[0] != '/') BadFlags("--path must start with /");
      o.path = value;
    } else if (name == "conns") {
      o.conns = static_cast<int>(Number(name, value, 1, 100000));
    } else if (name == "rate") {
      o.rate = Number(name, value, 0, 1e6);
    } else if (name == "duration") {
      o.duration = Number(name, value, 1, 86400);
    } else if (name == "life_min") {
      o.life_min = Number(name, value, 0.1, 86400);
    } else if (name == "life_max") {
      o.life_max = Number(name, value, 0.1, 86400);
    } else if (name == "max_unacked") {
      o.max_unacked = static_cast<int>(Number(name, value, 1, 1000));
    } else if (name == "concurrency") {
      o.concurrency = static_cast<int>(Number(name, value, 1, 10000));
    } else if (name == "settle") {
      o.settle = Number(name, value, 1, 600);
    } else if (name == "deadline") {
      o.deadline = Number(name, value, 1, 90000);
    } else if (name == "out") {
      o.out = value;
    } else {
      BadFlags("unknown flag --" + name);
    }
  }
  if (o.gateways.empty()) BadFlags("--gateways=127.0.0.1:PORT[,...] is required");
  if (o.life_max < o.life_min) BadFlags("--life_max must be at least --life_min");
  if (o.deadline == 0) o.deadline = o.duration + 2 * o.settle + 90;
  return o;
}

// What one connection did, written to client.log when it ends.
struct Slot {
  std::shared_ptr<WsLoadConnection> ws;  // Null while the slot waits to reopen.
  Clock::time_point reopen_at;
  Clock::time_point close_at;
  size_t gateway = 0;
  enum class Mode { kUnknown, kEnvelope, kRaw } mode = Mode::kUnknown;
  std::string id;
  uint64_t sent = 0;
  std::set<uint64_t> unacked;
  std::vector<uint64_t> acked_ok;
};

class Soak final : public load::WsLoadHandler {
 public:
  explicit Soak(const Options& o)
      : o_(o), slots_(o.conns), timer_(ioc_), rng_(std::random_device{}()) {
    log_.open(o.out + "/client.log");
    if (!log_) BadFlags("cannot write " + o.out + "/client.log");
  }

  void Run() {
    started_ = Clock::now();
    // Spread the first opens over a second so they do not all queue at once.
    for (size_t i = 0; i < slots_.size(); ++i) {
      slots_[i].reopen_at = started_ + std::chrono::microseconds(1000000 * i / slots_.size());
    }
    Tick();
    ioc_.run();
    WriteSummary();
  }

  // load::WsLoadHandler
  void OnOpen(WsLoadConnection& conn) override {
    --connecting_;
    ++upgraded_;
    (void)conn;
  }

  void OnMessage(WsLoadConnection& conn, std::string_view payload, bool binary) override {
    Slot& slot = slots_[conn.index()];
    if (binary) return;
    if (slot.mode == Slot::Mode::kUnknown) {
      json::error_code ec;
      json::value v = json::parse(json::string_view(payload.data(), payload.size()), ec);
      if (!ec && v.is_object() && v.as_object().contains("type") &&
          v.as_object().at("type") == "open") {
        slot.mode = Slot::Mode::kEnvelope;
        const json::value* id = v.as_object().if_contains("connectionId");
        if (id != nullptr && id->is_string()) slot.id = std::string(id->as_string());
      } else {
        slot.mode = Slot::Mode::kRaw;  // The bench function's first frame: the id.
        slot.id = std::string(payload);
      }
      if (slot.id.empty()) slot.id = "?";
      ++accepted_;
      (slot.mode == Slot::Mode::kEnvelope ? envelope_ : raw_) += 1;
      log_ << "OPEN " << slot.id << "\n";
      return;
    }
    if (slot.mode == Slot::Mode::kRaw) {
      // The echo of "s<n>" is the ack of message n.
      if (payload.size() < 2 || payload[0] != 's') return;
      Acked(slot, std::strtoull(std::string(payload.substr(1)).c_str(), nullptr, 10), "");
      return;
    }
    json::error_code ec;
    json::value v = json::parse(json::string_view(payload.data(), payload.size()), ec);
    if (ec || !v.is_object()) {
      ++bad_frames_;
      return;
    }
    const json::object& frame = v.as_object();
    const json::value* type = frame.if_contains("type");
    if (type == nullptr || *type != "ack") return;  // Echoes (message frames), events.
    const json::value* id = frame.if_contains("id");
    const json::value* ok = frame.if_contains("ok");
    if (id == nullptr || !id->is_int64() || ok == nullptr || !ok->is_bool()) {
      ++bad_frames_;
      return;
    }
    std::string code;
    if (!ok->as_bool()) {
      code = "UNKNOWN";
      const json::value* error = frame.if_contains("error");
      if (error != nullptr && error->is_object()) {
        const json::value* c = error->as_object().if_contains("code");
        if (c != nullptr && c->is_string()) code = std::string(c->as_string());
      }
    }
    Acked(slot, static_cast<uint64_t>(id->as_int64()), code);
  }

  void OnClosed(WsLoadConnection& conn, CloseKind kind, std::string_view why) override {
    Slot& slot = slots_[conn.index()];
    if (kind == CloseKind::kConnectFailed) {
      --connecting_;
      if (conn.http_status() != 0) {
        ++refused_[conn.http_status()];
      } else {
        ++connect_failed_;
      }
    } else if (conn.close_code() != 0) {
      ++server_closes_[conn.close_code()];
    } else if (kind == CloseKind::kClean) {
      ++client_closes_;
    } else {
      ++broken_;
    }
    unanswered_ += slot.unacked.size();
    for (uint64_t seq : slot.acked_ok) log_ << "ACKOK " << slot.id << " " << seq << "\n";
    // A refused or broken connection waits a little before its slot tries again.
    const auto wait = kind == CloseKind::kConnectFailed ? std::chrono::milliseconds(200)
                                                        : std::chrono::milliseconds(20);
    // Not destroyed here: this may run inside the connection's own Abort().
    finished_.push_back(std::move(slot.ws));
    slot = Slot{};
    slot.reopen_at = Clock::now() + wait;
    (void)why;
  }

 private:
  void Acked(Slot& slot, uint64_t seq, const std::string& error_code) {
    if (slot.unacked.erase(seq) == 0) {
      ++unexpected_acks_;
      return;
    }
    if (error_code.empty()) {
      ++acks_ok_;
      slot.acked_ok.push_back(seq);
    } else {
      ++acks_error_[error_code];
    }
  }

  double Uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }

  void Open(size_t index) {
    Slot& slot = slots_[index];
    slot.gateway = next_gateway_++ % o_.gateways.size();
    slot.close_at = Clock::now() + std::chrono::microseconds(static_cast<int64_t>(
                                       1e6 * Uniform(o_.life_min, o_.life_max)));
    slot.ws = std::make_shared<WsLoadConnection>(ioc_, *this, index, 4096);
    slot.ws->subprotocol = "fngate.v1";
    const tcp::endpoint& gateway = o_.gateways[slot.gateway];
    ++attempts_;
    ++connecting_;
    slot.ws->Start(gateway, std::nullopt,
                   gateway.address().to_string() + ":" + std::to_string(gateway.port()), o_.path);
  }

  void Send(Slot& slot) {
    const uint64_t seq = ++slot.sent;
    slot.unacked.insert(seq);
    ++sent_;
    if (slot.mode == Slot::Mode::kEnvelope) {
      const std::string n = std::to_string(seq);
      slot.ws->Send("{\"type\":\"message\",\"data\":\"s" + n + "\",\"ack\":" + n + "}", false);
    } else {
      slot.ws->Send("s" + std::to_string(seq), false);
    }
  }

  bool Sendable(const Slot& slot) const {
    return slot.ws != nullptr && slot.ws->is_open() && slot.mode != Slot::Mode::kUnknown &&
           static_cast<int>(slot.unacked.size()) < o_.max_unacked;
  }

  void Tick() {
    finished_.clear();
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - started_).count();
    if (elapsed >= o_.deadline) {
      std::fprintf(stderr, "fngate_soak: deadline of %.0f s passed\n", o_.deadline);
      std::fflush(stderr);
      std::_Exit(3);
    }
    const bool loading = elapsed < o_.duration;
    if (loading) {
      for (size_t i = 0; i < slots_.size() && connecting_ < o_.concurrency; ++i) {
        if (slots_[i].ws == nullptr && slots_[i].reopen_at <= now) Open(i);
      }
      for (Slot& slot : slots_) {
        if (slot.ws != nullptr && slot.ws->is_open() && slot.close_at <= now &&
            slot.unacked.empty()) {
          slot.ws->Close(1000);
        }
      }
      budget_ += o_.rate * std::chrono::duration<double>(kTick).count();
      for (int tries = 0; budget_ >= 1 && tries < 4 * static_cast<int>(budget_) + 8; ++tries) {
        Slot& slot = slots_[std::uniform_int_distribution<size_t>(0, slots_.size() - 1)(rng_)];
        if (!Sendable(slot)) continue;
        Send(slot);
        budget_ -= 1;
      }
      budget_ = std::min(budget_, o_.rate);  // Not sendable for a while: no burst later.
    } else if (!closing_) {
      // Answers first (bounded by --settle), then the closes.
      bool waiting = false;
      for (const Slot& slot : slots_) waiting |= slot.ws != nullptr && !slot.unacked.empty();
      if (!waiting || elapsed >= o_.duration + o_.settle) closing_ = true;
    } else {
      // Each tick: connections still upgrading when the closing began are open by now.
      for (Slot& slot : slots_) {
        if (slot.ws != nullptr && slot.ws->is_open()) slot.ws->Close(1000);
      }
      bool open = false;
      for (const Slot& slot : slots_) open |= slot.ws != nullptr && !slot.ws->is_closed();
      if (!open) return;  // Done: ioc_.run() returns.
      if (elapsed >= o_.duration + 2 * o_.settle) {
        for (Slot& slot : slots_) {
          if (slot.ws != nullptr && !slot.ws->is_closed()) {
            ++abandoned_;
            slot.ws->Abort();
          }
        }
        return;
      }
    }
    timer_.expires_after(kTick);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Tick();
    });
  }

  void WriteSummary() {
    log_.close();
    auto map_json = [](const auto& m) {
      std::string out = "{";
      for (const auto& [k, v] : m) {
        if (out.size() > 1) out += ", ";
        std::ostringstream key;
        key << k;
        out += "\"" + key.str() + "\": " + std::to_string(v);
      }
      return out + "}";
    };
    std::ofstream out(o_.out + "/summary.json");
    out << "{\"attempts\": " << attempts_ << ", \"upgraded\": " << upgraded_
        << ", \"accepted\": " << accepted_ << ", \"envelope\": " << envelope_
        << ", \"raw\": " << raw_ << ", \"refused\": " << map_json(refused_)
        << ", \"connect_failed\": " << connect_failed_
        << ", \"server_closes\": " << map_json(server_closes_)
        << ", \"client_closes\": " << client_closes_ << ", \"broken\": " << broken_
        << ", \"abandoned\": " << abandoned_ << ", \"messages\": " << sent_
        << ", \"acks_ok\": " << acks_ok_ << ", \"acks_error\": " << map_json(acks_error_)
        << ", \"unanswered\": " << unanswered_ << ", \"unexpected_acks\": " << unexpected_acks_
        << ", \"bad_frames\": " << bad_frames_ << "}\n";
  }

  const Options o_;
  net::io_context ioc_;
  std::vector<Slot> slots_;
  net::steady_timer timer_;
  std::mt19937_64 rng_;
  std::ofstream log_;
  std::vector<std::shared_ptr<WsLoadConnection>> finished_;  // Released at the next tick.
  Clock::time_point started_;
  size_t next_gateway_ = 0;
  double budget_ = 0;
  bool closing_ = false;
  int connecting_ = 0;
  uint64_t attempts_ = 0, upgraded_ = 0, accepted_ = 0, envelope_ = 0, raw_ = 0;
  uint64_t connect_failed_ = 0, client_closes_ = 0, broken_ = 0, abandoned_ = 0;
  uint64_t sent_ = 0, acks_ok_ = 0, unanswered_ = 0, unexpected_acks_ = 0, bad_frames_ = 0;
  std::map<int, uint64_t> refused_, server_closes_;
  std::map<std::string, uint64_t> acks_error_;
};

}  // namespace
}  // namespace fngate::soak

int main(int argc, char** argv) {
  const fngate::soak::Options options = fngate::soak::ParseFlags(argc, argv);
  fngate::soak::Soak soak(options);
  soak.Run();
  return 0;
}
