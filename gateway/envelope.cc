#include "gateway/envelope.h"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
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

// Scanning JSON text that the parser has already accepted, so every step below may rely on it
// being well formed: the end of a string is the first '"' not escaped by '\'.

size_t SkipString(std::string_view text, size_t i) {  // text[i] == '"'
  for (++i; text[i] != '"'; ++i) {
    if (text[i] == '\\') ++i;
  }
  return i + 1;
}

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

size_t SkipSpace(std::string_view text, size_t i) {
  while (i < text.size() && IsJsonSpace(text[i])) ++i;
  return i;
}

size_t SkipValue(std::string_view text, size_t i) {
  if (text[i] == '"') return SkipString(text, i);
  if (text[i] == '{' || text[i] == '[') {
    size_t depth = 0;
    do {
      if (text[i] == '"') {
        i = SkipString(text, i);
        continue;
      }
      if (text[i] == '{' || text[i] == '[') ++depth;
      if (text[i] == '}' || text[i] == ']') --depth;
      ++i;
    } while (depth > 0);
    return i;
  }
  // A number, true, false or null.
  while (i < text.size() && text[i] != ',' && text[i] != '}' && text[i] != ']' &&
         !IsJsonSpace(text[i])) {
    ++i;
  }
  return i;
}

// The text of the value of the last top-level member named `name` of `object_text`, a JSON
// object the parser accepted and found that member in. Used instead of re-serialising the
// parsed value: Boost.JSON 1.81 reads some numbers one unit in the last place off (precise
// parsing came in 1.83) and writes 1e400 back as "Infinity", while the client's own text is
// exact, and already checked.
std::string_view MemberText(std::string_view object_text, std::string_view name) {
  std::string_view found;
  size_t i = SkipSpace(object_text, 0) + 1;  // Past '{'.
  while (true) {
    i = SkipSpace(object_text, i);
    if (object_text[i] == '}') break;
    const size_t key_end = SkipString(object_text, i);
    const std::string_view key = object_text.substr(i, key_end - i);  // With its quotes.
    i = SkipSpace(object_text, key_end) + 1;                          // Past ':'.
    const size_t value_begin = SkipSpace(object_text, i);
    i = SkipValue(object_text, value_begin);
    bool match = key.substr(1, key.size() - 2) == name;
    if (!match && key.find('\\') != std::string_view::npos) {  // "\u0064ata" is "data" too.
      json::error_code ec;
      const json::value decoded = json::parse(json::string_view(key.data(), key.size()), ec);
      match = !ec && decoded.is_string() && decoded.get_string() == name;
    }
    if (match) found = object_text.substr(value_begin, i - value_begin);
    i = SkipSpace(object_text, i);
    if (object_text[i] == ',') ++i;
  }
  return found;
}

// `text` (valid JSON) without the whitespace between tokens.
std::string Compact(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '"') {
      const size_t end = SkipString(text, i);
      out.append(text.data() + i, end - i);
      i = end;
    } else {
      if (!IsJsonSpace(text[i])) out.push_back(text[i]);
      ++i;
    }
  }
  return out;
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
  } else {
    out.data.set_json(Compact(MemberText(text, "data")));
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
