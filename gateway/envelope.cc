#include "gateway/envelope.h"

#include <cmath>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "absl/strings/str_cat.h"

namespace fngate::gateway::envelope {
namespace {

namespace json = boost::json;

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD in UTF-8.

// The number of bytes of the well-formed UTF-8 sequence at the start of `s` (Unicode table
// 3-7), or, when there is none, the length of its maximal invalid subpart (at least 1): the
// bytes one U+FFFD replaces.
size_t Utf8Sequence(std::string_view s, bool& valid) {
  const auto c = static_cast<unsigned char>(s[0]);
  size_t continuation = 0;
  unsigned char low = 0x80, high = 0xBF;  // Range of the first continuation byte.
  if (c >= 0xC2 && c <= 0xDF) {
    continuation = 1;
  } else if (c == 0xE0) {
    continuation = 2, low = 0xA0;  // No overlong forms.
  } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    continuation = 2;
  } else if (c == 0xED) {
    continuation = 2, high = 0x9F;  // No surrogates.
  } else if (c == 0xF0) {
    continuation = 3, low = 0x90;  // No overlong forms.
  } else if (c >= 0xF1 && c <= 0xF3) {
    continuation = 3;
  } else if (c == 0xF4) {
    continuation = 3, high = 0x8F;  // Nothing above U+10FFFF.
  } else {
    valid = false;  // A continuation byte, C0, C1 or F5-FF: never a lead byte.
    return 1;
  }
  size_t n = 1;
  while (n <= continuation && n < s.size()) {
    const auto d = static_cast<unsigned char>(s[n]);
    if (d < low || d > high) break;
    low = 0x80, high = 0xBF;
    ++n;
  }
  valid = n == continuation + 1;
  return n;
}

// The JSON text of `frame`'s "data": an empty string (or none) is null.
std::string_view JsonOrNull(std::string_view json_text) {
  return json_text.empty() ? std::string_view("null") : json_text;
}

absl::Status TooLarge(size_t size, size_t max_bytes) {
  return absl::InvalidArgumentError(
      absl::StrCat("JSON of ", size, " bytes is larger than the limit of ", max_bytes));
}

// Parses `text` into a value allocated from `resource`, with the codec's bounds. Errors name
// the byte where parsing stopped.
absl::Status Parse(std::string_view text, size_t max_bytes, json::monotonic_resource& resource,
                   json::value& out) {
  if (text.size() > max_bytes) return TooLarge(text.size(), max_bytes);
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;  // Strict JSON otherwise: no comments, no trailing commas,
                                      // strings must be valid UTF-8.
  // The parser's own stack (one entry per open array or object) starts in this buffer.
  unsigned char temp[1024];
  json::parser parser(json::storage_ptr(), options, temp, sizeof temp);
  parser.reset(&resource);
  json::error_code ec;
  const size_t consumed = parser.write(text.data(), text.size(), ec);
  if (ec) {
    if (ec == json::error::too_deep) {
      return absl::InvalidArgumentError(absl::StrCat(
          "not valid JSON: nested deeper than ", kMaxJsonDepth, " arrays or objects"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("not valid JSON at byte ", consumed, ": ", ec.message()));
  }
  out = parser.release();
  return absl::OkStatus();
}

// "ack": a non-empty string of at most kMaxAckIdBytes, or an integer. Returns its JSON text in
// `ack_id` (left empty for null or absent).
absl::Status ReadAckId(const json::object& frame, std::string& ack_id) {
  const json::value* ack = frame.if_contains("ack");
  if (ack == nullptr || ack->is_null()) return absl::OkStatus();
  if (const json::string* s = ack->if_string()) {
    if (s->empty()) return absl::InvalidArgumentError("\"ack\" must not be an empty string");
    if (s->size() > kMaxAckIdBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"ack\" is longer than ", kMaxAckIdBytes, " bytes"));
    }
  } else if (!ack->is_int64() && !ack->is_uint64()) {
    return absl::InvalidArgumentError("\"ack\" must be a string or an integer");
  }
  // An integer has at most 20 digits and a sign: always within the limit.
  ack_id = json::serialize(*ack);
  return absl::OkStatus();
}

// False if `value` holds a number too large for a double (1e400 parses as infinity), which
// Boost.JSON 1.81 would serialise as "Infinity": not JSON. Recursion is bounded by
// kMaxJsonDepth.
bool AllNumbersFinite(const json::value& value) {
  switch (value.kind()) {
    case json::kind::double_:
      return std::isfinite(value.get_double());
    case json::kind::array:
      for (const json::value& item : value.get_array()) {
        if (!AllNumbersFinite(item)) return false;
      }
      return true;
    case json::kind::object:
      for (const json::key_value_pair& item : value.get_object()) {
        if (!AllNumbersFinite(item.value())) return false;
      }
      return true;
    default:
      return true;
  }
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + text.size() + 2);
  out.push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    // Copy runs of bytes that need nothing in one go.
    size_t run = i;
    while (run < text.size()) {
      const auto c = static_cast<unsigned char>(text[run]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++run;
    }
    out.append(text.data() + i, run - i);
    i = run;
    if (i == text.size()) break;
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      bool valid = false;
      const size_t n = Utf8Sequence(text.substr(i), valid);
      if (valid) {
        out.append(text.data() + i, n);
      } else {
        out.append(kReplacementCharacter);
      }
      i += n;
      continue;
    }
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default: {
        const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(escape, sizeof escape);
      }
    }
    ++i;
  }
  out.push_back('"');
}

std::string OpenFrame(std::string_view connection_id, std::string_view user_id) {
  std::string frame = R"({"type":"open","connectionId":)";
  AppendJsonString(frame, connection_id);
  frame.append(R"(,"userId":)");
  if (user_id.empty()) {
    frame.append("null");
  } else {
    AppendJsonString(frame, user_id);
  }
  frame.push_back('}');
  return frame;
}

std::string EventFrame(std::string_view name, std::string_view data_json) {
  std::string frame = R"({"type":"event","name":)";
  AppendJsonString(frame, name);
  frame.append(R"(,"data":)");
  frame.append(JsonOrNull(data_json));
  frame.push_back('}');
  return frame;
}

std::string AckFrame(std::string_view ack_id, const absl::Status& status) {
  std::string frame = R"({"type":"ack","id":)";
  // Always a JSON string or integer from ParseClientFrame; null keeps the frame valid if a
  // caller passes none.
  frame.append(JsonOrNull(ack_id));
  if (status.ok()) {
    frame.append(R"(,"ok":true})");
    return frame;
  }
  frame.append(R"(,"ok":false,"error":{"code":)");
  AppendJsonString(frame, absl::StatusCodeToString(status.code()));
  frame.append(R"(,"message":)");
  const absl::string_view message = status.message();  // Not a std::string_view in Debian 12.
  AppendJsonString(frame, std::string_view(message.data(), message.size()));
  frame.append("}}");
  return frame;
}

std::string ErrorFrame(std::string_view message) {
  std::string frame = R"({"type":"error","message":)";
  AppendJsonString(frame, message);
  frame.push_back('}');
  return frame;
}

std::string PongFrame() { return R"({"type":"pong"})"; }

ClientFrame ParseClientFrame(std::string_view text, size_t max_bytes) {
  ClientFrame out;
  // Small frames parse without touching the heap; the whole value is freed at once.
  unsigned char buffer[4096];
  json::monotonic_resource resource(buffer, sizeof buffer);
  json::value value(&resource);  // Same resource as the parsed value: moved, not copied.
  out.status = Parse(text, max_bytes, resource, value);
  if (!out.status.ok()) return out;
  const json::object* frame = value.if_object();
  if (frame == nullptr) {
    out.status = absl::InvalidArgumentError("a frame must be a JSON object with a \"type\"");
    return out;
  }
  // The ack id first, so that every later error can be answered with an ack.
  out.status = ReadAckId(*frame, out.ack_id);
  if (!out.status.ok()) return out;

  const json::value* type = frame->if_contains("type");
  if (type == nullptr) {
    out.status = absl::InvalidArgumentError("the frame has no \"type\"");
    return out;
  }
  const json::string* type_name = type->if_string();
  if (type_name == nullptr) {
    out.status = absl::InvalidArgumentError("\"type\" must be a string");
    return out;
  }
  if (*type_name == "ping") {
    out.type = ClientFrameType::kPing;
    return out;
  }
  if (*type_name != "message") {
    std::string quoted;
    AppendJsonString(quoted, std::string_view(type_name->data(), type_name->size()));
    out.status = absl::InvalidArgumentError(
        absl::StrCat("unknown frame type ", quoted, " (expected \"message\" or \"ping\")"));
    return out;
  }
  out.type = ClientFrameType::kMessage;
  const json::value* data = frame->if_contains("data");
  if (data == nullptr) {
    out.status = absl::InvalidArgumentError("a \"message\" frame needs \"data\"");
    return out;
  }
  if (const json::string* s = data->if_string()) {
    out.data.set_text(s->data(), s->size());  // Valid UTF-8: the parser checked it.
  } else if (!AllNumbersFinite(*data)) {
    out.status = absl::InvalidArgumentError("a number in \"data\" is too large for a double");
  } else {
    out.data.set_json(json::serialize(*data));
  }
  return out;
}

absl::Status ValidateJson(std::string_view text, size_t max_bytes) {
  unsigned char buffer[4096];
  json::monotonic_resource resource(buffer, sizeof buffer);
  json::value value(&resource);
  return Parse(text, max_bytes, resource, value);
}

}  // namespace fngate::gateway::envelope
