// tests/fuzz/envelope_fuzz.cc
// The envelope codec (gateway/envelope.h) on arbitrary bytes: as a client frame, as JSON from a
// function, and as a string the gateway escapes. Besides "no crash, no UB", it checks the
// codec's promises: every frame it builds is valid JSON (and so valid UTF-8), what it parses
// from a client is a payload the function can use, and escaping is faithful.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/parser.hpp>
#include <boost/json/value.hpp>

#include "gateway/envelope.h"
#include "gateway/outbound.h"
#include "tests/fuzz/fuzz_check.h"

namespace fngate::gateway::envelope {
namespace {

namespace json = boost::json;

constexpr size_t kMaxBytes = 64 * 1024;

// An independent check that `text` is one valid JSON value: Boost.JSON with a depth limit well
// above the codec's, since frames wrap data that may itself be kMaxJsonDepth deep.
bool ParseJson(std::string_view text, json::value& out) {
  json::parse_options options;
  options.max_depth = 4 * kMaxJsonDepth;
  json::parser parser(json::storage_ptr(), options);
  json::error_code ec;
  parser.write(text.data(), text.size(), ec);
  if (ec) return false;
  out = parser.release();
  return true;
}

json::value MustParse(std::string_view frame) {
  json::value value;
  FUZZ_CHECK(ParseJson(frame, value)) << "built a frame that is not JSON: " << frame;
  return value;
}

// Value equality, except that NaN equals NaN: Boost.JSON 1.81 reads "0e400" as NaN, and the
// point here is that both sides read the same text.
bool SameValue(const json::value& a, const json::value& b) {
  if (a.is_double() && b.is_double() && std::isnan(a.get_double())) {
    return std::isnan(b.get_double());
  }
  if (a.is_array() && b.is_array()) {
    const json::array& x = a.get_array();
    const json::array& y = b.get_array();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (!SameValue(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object() && b.is_object()) {
    const json::object& x = a.get_object();
    const json::object& y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const json::key_value_pair& item : x) {
      const json::value* other = y.if_contains(item.key());
      if (other == nullptr || !SameValue(item.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

// The `message` frame of a text or JSON payload, exactly as the gateway wraps pushes.
std::string MessageFrameText(const v1::Payload& payload) {
  return MessageFromPayload(v1::Payload(payload))->EnvelopeData();
}

std::string_view View(const json::string& s) { return {s.data(), s.size()}; }
std::string_view View(absl::string_view s) { return {s.data(), s.size()}; }

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// AppendJsonString: always a JSON string; exact for ASCII; and escaping what it decodes to
// gives the same text again (the replacement of invalid UTF-8 is stable).
void CheckEscaping(std::string_view input) {
  std::string quoted;
  AppendJsonString(quoted, input);
  const json::value value = MustParse(quoted);
  FUZZ_CHECK(value.is_string()) << quoted;
  const std::string_view decoded = View(value.get_string());
  if (IsAscii(input)) FUZZ_CHECK(decoded == input) << "ASCII changed: " << quoted;
  std::string again;
  AppendJsonString(again, decoded);
  FUZZ_CHECK(again == quoted) << "escaping is not stable: " << quoted << " vs " << again;
}

// ParseClientFrame: refusals carry a message and produce a valid answer frame; accepted
// messages carry a usable payload, equal to what the client sent.
void CheckClientFrame(std::string_view input) {
  const ClientFrame frame = ParseClientFrame(input, kMaxBytes);
  if (!frame.ack_id.empty()) {
    json::value id;
    FUZZ_CHECK(ParseJson(frame.ack_id, id) && (id.is_string() || id.is_number()))
        << "bad ack id " << frame.ack_id;
    if (id.is_string()) FUZZ_CHECK(id.get_string().size() <= kMaxAckIdBytes) << frame.ack_id;
    const json::value ack = MustParse(AckFrame(frame.ack_id, frame.status));
    FUZZ_CHECK(ack.at("id") == id) << "ack id not echoed: " << frame.ack_id;
  }
  if (!frame.status.ok()) {
    FUZZ_CHECK(frame.status.code() == absl::StatusCode::kInvalidArgument) << frame.status;
    FUZZ_CHECK(!frame.status.message().empty());
    MustParse(ErrorFrame(View(frame.status.message())));
    return;
  }
  if (frame.type == ClientFrameType::kPing) return;
  const std::string echoed = MessageFrameText(frame.data);
  const json::value data = MustParse(echoed).at("data");
  if (frame.data.has_text()) {
    // Decoded by a strict parser, so valid UTF-8: escaping must not change it.
    FUZZ_CHECK(data.is_string() && View(data.get_string()) == frame.data.text())
        << "text payload changed on the way back: " << echoed;
  } else {
    FUZZ_CHECK(frame.data.has_json()) << "a message without data";
    FUZZ_CHECK(ValidateJson(frame.data.json(), kMaxBytes).ok())
        << "parsed data is not valid JSON: " << frame.data.json();
    // The same value as the client's "data" (the last one, if repeated), read independently.
    json::value sent;
    FUZZ_CHECK(ParseJson(input, sent) && sent.is_object() && sent.get_object().contains("data"));
    json::value forwarded;
    FUZZ_CHECK(ParseJson(frame.data.json(), forwarded));
    FUZZ_CHECK(SameValue(forwarded, sent.get_object().at("data")))
        << "data changed: " << frame.data.json();
    FUZZ_CHECK(frame.data.json().find_first_of(" \t\r\n") == std::string::npos ||
               frame.data.json().find('"') != std::string::npos)
        << "whitespace left between tokens: " << frame.data.json();
  }
}

// ValidateJson: what it accepts can be inlined into every frame kind.
void CheckInlining(std::string_view input) {
  if (!ValidateJson(input, kMaxBytes).ok()) return;
  MustParse(EventFrame("e", input));
  v1::Payload payload;
  payload.set_json(std::string(input));
  MustParse(MessageFrameText(payload));
}

}  // namespace
}  // namespace fngate::gateway::envelope

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fngate::gateway::envelope;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckEscaping(input);
  CheckClientFrame(input);
  CheckInlining(input);
  MustParse(OpenFrame(input, input));
  return 0;
}
