#include "gateway/envelope.h"
#include "gateway/outbound.h"

#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace fngate::gateway::envelope {
namespace {

using ::testing::HasSubstr;

constexpr size_t kLimit = 1 << 20;
constexpr std::string_view kFffd = "\xEF\xBF\xBD";

// Frames must be valid JSON for any input: parse each with Boost.JSON (which also insists on
// valid UTF-8) and return the value.
boost::json::value MustParse(const std::string& frame) {
  boost::json::error_code ec;
  boost::json::value value = boost::json::parse(frame, ec);
  EXPECT_FALSE(ec) << "not valid JSON: " << frame << " (" << ec.message() << ")";
  return value;
}

std::string Quoted(std::string_view text) {
  std::string out;
  AppendJsonString(out, text);
  return out;
}

std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

v1::Payload Text(std::string text) {
  v1::Payload p;
  p.set_text(std::move(text));
  return p;
}
v1::Payload Json(std::string json) {
  v1::Payload p;
  p.set_json(std::move(json));
  return p;
}

// ----------------------------------------------------------------------------- server frames

TEST(EnvelopeOpenFrameTest, CarriesConnectionAndUser) {
  EXPECT_EQ(OpenFrame("c1", "u1"), R"({"type":"open","connectionId":"c1","userId":"u1"})");
}

TEST(EnvelopeOpenFrameTest, UnboundUserIsNull) {
  EXPECT_EQ(OpenFrame("c1", ""), R"({"type":"open","connectionId":"c1","userId":null})");
}

TEST(EnvelopeOpenFrameTest, UserIdIsEscaped) {
  const std::string frame = OpenFrame("c1", "a\"b\\c\n\xFF");
  EXPECT_EQ(MustParse(frame).at("userId").as_string(), "a\"b\\c\n\xEF\xBF\xBD");
}

// What envelope clients get for a push: OutboundMessage::EnvelopeData() (gateway/outbound.h),
// built on this codec's escaping.
std::string Envelope(v1::Payload payload) {
  return MessageFromPayload(std::move(payload))->EnvelopeData();
}

TEST(EnvelopeMessageFrameTest, JsonIsInlinedAsItIs) {
  const std::string frame = Envelope(Json(R"({"a": [1, 2]})"));
  EXPECT_EQ(frame, R"({"type":"message","data":{"a": [1, 2]}})");
  EXPECT_EQ(MustParse(frame).at("data").at("a").as_array().size(), 2u);
}

TEST(EnvelopeMessageFrameTest, EmptyJsonIsNull) {
  EXPECT_EQ(Envelope(Json("")), R"({"type":"message","data":null})");
}

TEST(EnvelopeMessageFrameTest, TextBecomesAJsonString) {
  EXPECT_EQ(Envelope(Text("hi \"you\"\n")), R"({"type":"message","data":"hi \"you\"\n"})");
}

TEST(EnvelopeMessageFrameTest, TextKeepsUnicodeAndReplacesInvalidUtf8) {
  EXPECT_EQ(MustParse(Envelope(Text("caf\xC3\xA9 \xE2\x82\xAC \xC0\xAF end"))).at("data").as_string(),
            "caf\xC3\xA9 \xE2\x82\xAC \xEF\xBF\xBD\xEF\xBF\xBD end");
}

TEST(EnvelopeMessageFrameTest, BinaryStaysBinaryAndUnwrapped) {
  v1::Payload p;
  p.set_binary(std::string("\x00\xFF{", 3));
  OutboundMessagePtr m = MessageFromPayload(std::move(p));
  EXPECT_TRUE(m->binary());
  EXPECT_EQ(m->EnvelopeData(), std::string("\x00\xFF{", 3));
}

TEST(EnvelopeMessageFrameTest, BuiltOnceAndShared) {
  OutboundMessagePtr m = MessageFromPayload(Text("x"));
  EXPECT_EQ(&m->EnvelopeData(), &m->EnvelopeData());
  EXPECT_EQ(m->data, "x");  // Raw clients still get the text as it is.
}

TEST(EnvelopeEventFrameTest, CarriesNameAndData) {
  EXPECT_EQ(EventFrame("forceLogout", R"({"reason":"banned"})"),
            R"({"type":"event","name":"forceLogout","data":{"reason":"banned"}})");
}

TEST(EnvelopeEventFrameTest, EmptyDataIsNullAndNameIsEscaped) {
  const std::string frame = EventFrame("a\"b", "");
  EXPECT_EQ(frame, R"({"type":"event","name":"a\"b","data":null})");
  MustParse(frame);
}

TEST(EnvelopeAckFrameTest, OkEchoesStringId) {
  EXPECT_EQ(AckFrame(R"("a1")", absl::OkStatus()), R"({"type":"ack","id":"a1","ok":true})");
}

TEST(EnvelopeAckFrameTest, OkEchoesIntegerId) {
  EXPECT_EQ(AckFrame("7", absl::OkStatus()), R"({"type":"ack","id":7,"ok":true})");
}

TEST(EnvelopeAckFrameTest, ErrorCarriesCodeAndMessage) {
  EXPECT_EQ(AckFrame(R"("a1")", absl::UnavailableError("no worker \"up\"")),
            R"({"type":"ack","id":"a1","ok":false,)"
            R"("error":{"code":"UNAVAILABLE","message":"no worker \"up\""}})");
  const boost::json::value v =
      MustParse(AckFrame("12", absl::DeadlineExceededError("slow")));
  EXPECT_EQ(v.at("id").as_int64(), 12);
  EXPECT_EQ(v.at("error").at("code").as_string(), "DEADLINE_EXCEEDED");
}

TEST(EnvelopeAckFrameTest, MissingIdStaysValidJson) {
  EXPECT_EQ(AckFrame("", absl::OkStatus()), R"({"type":"ack","id":null,"ok":true})");
}

TEST(EnvelopeErrorFrameTest, CarriesTheMessage) {
  EXPECT_EQ(ErrorFrame("bad \"frame\""), R"({"type":"error","message":"bad \"frame\""})");
}

TEST(EnvelopePongFrameTest, IsPong) { EXPECT_EQ(PongFrame(), R"({"type":"pong"})"); }

// ----------------------------------------------------------------------------- escaping

TEST(EnvelopeJsonStringTest, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(Quoted(""), R"("")");
  EXPECT_EQ(Quoted("plain"), R"("plain")");
  EXPECT_EQ(Quoted("\"\\/"), R"("\"\\/")");
  EXPECT_EQ(Quoted("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(Quoted(std::string("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
}

TEST(EnvelopeJsonStringTest, ValidUtf8IsCopied) {
  const std::string text = "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xEF\xBF\xBF\xF4\x8F\xBF\xBF";
  EXPECT_EQ(Quoted(text), "\"" + text + "\"");
}

TEST(EnvelopeJsonStringTest, EachInvalidSequenceBecomesOneReplacement) {
  const std::string r(kFffd);
  // A lone continuation byte, bytes that never lead, an overlong form, a surrogate, a code
  // point above U+10FFFF.
  EXPECT_EQ(Quoted("a\x80z"), "\"a" + r + "z\"");
  EXPECT_EQ(Quoted("\xC0\xAF"), "\"" + r + r + "\"");
  EXPECT_EQ(Quoted("\xFF\xF5"), "\"" + r + r + "\"");
  EXPECT_EQ(Quoted("\xE0\x80\x80"), "\"" + r + r + r + "\"");
  EXPECT_EQ(Quoted("\xED\xA0\x80"), "\"" + r + r + r + "\"");
  EXPECT_EQ(Quoted("\xF4\x90\x80\x80"), "\"" + r + r + r + r + "\"");
  // A truncated sequence is one maximal subpart: one replacement, then what follows.
  EXPECT_EQ(Quoted("\xE2\x82z"), "\"" + r + "z\"");
  EXPECT_EQ(Quoted("\xF0\x9F\x98"), "\"" + r + "\"");
  EXPECT_EQ(Quoted("\xF0\x9F\x98\""), "\"" + r + "\\\"\"");
}

// ----------------------------------------------------------------------------- client frames

TEST(EnvelopeParseTest, StringDataBecomesText) {
  const ClientFrame f = ParseClientFrame(R"({"type":"message","data":"hi \u00e9\n"})", kLimit);
  ASSERT_TRUE(f.status.ok()) << f.status;
  EXPECT_EQ(f.type, ClientFrameType::kMessage);
  ASSERT_TRUE(f.data.has_text());
  EXPECT_EQ(f.data.text(), "hi \xC3\xA9\n");
  EXPECT_EQ(f.ack_id, "");
}

TEST(EnvelopeParseTest, OtherDataBecomesCompactJson) {
  struct Case {
    std::string data;
    std::string json;
  };
  for (const Case& c : {Case{"{ \"a\" : [1, 2.50, true, null],\n\t\"b\":{} }",
                             R"({"a":[1,2.50,true,null],"b":{}})"},
                        Case{"[]", "[]"}, Case{"-12", "-12"}, Case{"null", "null"},
                        Case{"false", "false"}, Case{" 1e2 ", "1e2"},
                        // Whitespace inside strings stays; so do the client's escapes.
                        Case{R"({"s":" a , b ","t":"\u0001\"\\"})",
                             R"({"s":" a , b ","t":"\u0001\"\\"})"},
                        Case{R"([[{"data":[1]}],"]}",{"x":"{"}])",
                             R"([[{"data":[1]}],"]}",{"x":"{"}])"}}) {
    const ClientFrame f =
        ParseClientFrame(R"({"type":"message","data":)" + c.data + "}", kLimit);
    ASSERT_TRUE(f.status.ok()) << c.data << ": " << f.status;
    ASSERT_TRUE(f.data.has_json()) << c.data;
    EXPECT_EQ(f.data.json(), c.json);
    EXPECT_TRUE(ValidateJson(f.data.json(), kLimit).ok()) << f.data.json();
  }
}

TEST(EnvelopeParseTest, DataIsFoundWhereverItIs) {
  for (const char* frame :
       {R"({"data":[1, 2],"type":"message"})", R"( { "ack" : "x" , "data" : [1,2] , "type":"message" } )",
        R"({"type":"message","meta":{"data":0},"x":"\"data\"","data":[1,2]})",
        R"({"type":"message","data":0,"data":[1,2]})",
        R"({"type":"message","\u0064ata":[1,2]})"}) {
    const ClientFrame f = ParseClientFrame(frame, kLimit);
    ASSERT_TRUE(f.status.ok()) << frame << ": " << f.status;
    EXPECT_EQ(f.data.json(), "[1,2]") << frame;
  }
}

// Found by fuzzing: Boost.JSON 1.81 reads some numbers one unit in the last place off, reads
// "0e400" as NaN, and writes 1e400 back as "Infinity" and NaN as "NaN" (neither is JSON). The
// function gets the client's own digits.
TEST(EnvelopeParseTest, NumbersArriveExactlyAsSent) {
  for (const char* number : {"118446744073709551615", "1e400", "-1e999", "1E-400", "0e400",
                             "123456789012345678901234567890", "0.1000000000000000055511151231257827",
                             "-0.0"}) {
    const ClientFrame f = ParseClientFrame(
        absl::StrCat(R"({"type":"message","data":[2800,)", number, "]}"), kLimit);
    ASSERT_TRUE(f.status.ok()) << number << ": " << f.status;
    EXPECT_EQ(f.data.json(), absl::StrCat("[2800,", number, "]"));
  }
}

TEST(EnvelopeParseTest, AckIdsAreKeptAsJson) {
  EXPECT_EQ(ParseClientFrame(R"({"type":"message","data":1,"ack":"a-1"})", kLimit).ack_id,
            R"("a-1")");
  EXPECT_EQ(ParseClientFrame(R"({"ack":42,"type":"message","data":1})", kLimit).ack_id, "42");
  EXPECT_EQ(ParseClientFrame(R"({"type":"message","data":1,"ack":-3})", kLimit).ack_id, "-3");
  EXPECT_EQ(
      ParseClientFrame(R"({"type":"message","data":1,"ack":18446744073709551615})", kLimit)
          .ack_id,
      "18446744073709551615");
  EXPECT_EQ(ParseClientFrame(R"({"type":"message","data":1,"ack":null})", kLimit).ack_id, "");
  // An escaped id is echoed escaped, and reads back the same.
  const ClientFrame f = ParseClientFrame(R"({"type":"message","data":1,"ack":"q\"\u00e9"})",
                                         kLimit);
  ASSERT_TRUE(f.status.ok()) << f.status;
  EXPECT_EQ(MustParse(AckFrame(f.ack_id, absl::OkStatus())).at("id").as_string(),
            "q\"\xC3\xA9");
}

TEST(EnvelopeParseTest, AckIdOf64BytesIsAccepted) {
  const ClientFrame f = ParseClientFrame(
      R"({"type":"message","data":1,"ack":")" + std::string(64, 'x') + R"("})", kLimit);
  EXPECT_TRUE(f.status.ok()) << f.status;
  EXPECT_EQ(f.ack_id.size(), 66u);
}

TEST(EnvelopeParseTest, PingIsRecognised) {
  const ClientFrame f = ParseClientFrame(R"({"type":"ping"})", kLimit);
  ASSERT_TRUE(f.status.ok()) << f.status;
  EXPECT_EQ(f.type, ClientFrameType::kPing);
}

TEST(EnvelopeParseTest, UnknownKeysAreIgnored) {
  const ClientFrame f =
      ParseClientFrame(R"({"type":"message","data":"x","v":2,"meta":{"a":1}})", kLimit);
  ASSERT_TRUE(f.status.ok()) << f.status;
  EXPECT_EQ(f.data.text(), "x");
}

// As JSON.parse in a browser does.
TEST(EnvelopeParseTest, RepeatedKeyTakesTheLastValue) {
  const ClientFrame f =
      ParseClientFrame(R"({"type":"ping","type":"message","data":1,"data":"x"})", kLimit);
  ASSERT_TRUE(f.status.ok()) << f.status;
  EXPECT_EQ(f.type, ClientFrameType::kMessage);
  EXPECT_EQ(f.data.text(), "x");
}

void ExpectError(std::string_view frame, std::string_view message_part,
                 std::string_view ack_id = "", size_t limit = kLimit) {
  const ClientFrame f = ParseClientFrame(frame, limit);
  EXPECT_EQ(f.status.code(), absl::StatusCode::kInvalidArgument) << frame;
  EXPECT_THAT(std::string(f.status.message()), HasSubstr(std::string(message_part))) << frame;
  EXPECT_EQ(f.ack_id, ack_id) << frame;
  // Whatever went wrong, the answer to it is valid JSON.
  const absl::string_view message = f.status.message();
  MustParse(f.ack_id.empty() ? ErrorFrame(std::string_view(message.data(), message.size()))
                             : AckFrame(f.ack_id, f.status));
}

TEST(EnvelopeParseTest, NotJson) {
  ExpectError("", "not valid JSON at byte 0");
  ExpectError("hello", "not valid JSON at byte 0");
  ExpectError(R"({"type":"message","data":1)", "not valid JSON");
  ExpectError(R"({"type":"message","data":1} x)", "not valid JSON at byte 28");
  ExpectError(R"({"type":"message","data":[1,]})", "not valid JSON");
  ExpectError(R"({"type":"message","data":1 /* c */})", "not valid JSON");
}

TEST(EnvelopeParseTest, InvalidUtf8OrLoneSurrogateIsNotJson) {
  ExpectError("{\"type\":\"message\",\"data\":\"\xC0\xAF\"}", "not valid JSON");
  ExpectError(R"({"type":"message","data":"\ud800"})", "not valid JSON");
}

TEST(EnvelopeParseTest, NotAnObject) {
  ExpectError(R"(["message"])", "must be a JSON object");
  ExpectError(R"("message")", "must be a JSON object");
  ExpectError("42", "must be a JSON object");
}

TEST(EnvelopeParseTest, MissingOrBadType) {
  ExpectError(R"({"data":1,"ack":"a"})", "no \"type\"", R"("a")");
  ExpectError(R"({"type":7,"data":1,"ack":"a"})", "\"type\" must be a string", R"("a")");
}

TEST(EnvelopeParseTest, UnknownTypeKeepsTheAckId) {
  ExpectError(R"({"type":"shout","data":1,"ack":5})", R"(unknown frame type "shout")", "5");
  ExpectError(R"({"type":"Message","data":1})", "unknown frame type");
}

TEST(EnvelopeParseTest, MissingDataKeepsTheAckId) {
  ExpectError(R"({"type":"message","ack":"m1"})", "needs \"data\"", R"("m1")");
}

TEST(EnvelopeParseTest, AckTooLong) {
  ExpectError(R"({"type":"message","data":1,"ack":")" + std::string(65, 'x') + R"("})",
              "longer than 64 bytes");
}

TEST(EnvelopeParseTest, AckOfTheWrongType) {
  ExpectError(R"({"type":"message","data":1,"ack":1.5})", "string or an integer");
  ExpectError(R"({"type":"message","data":1,"ack":true})", "string or an integer");
  ExpectError(R"({"type":"message","data":1,"ack":{"id":1}})", "string or an integer");
  ExpectError(R"({"type":"message","data":1,"ack":""})", "empty string");
}

TEST(EnvelopeParseTest, TooLarge) {
  const std::string frame = R"({"type":"message","data":"0123456789"})";
  EXPECT_TRUE(ParseClientFrame(frame, frame.size()).status.ok());
  ExpectError(frame, "larger than the limit", "", frame.size() - 1);
}

TEST(EnvelopeParseTest, TooDeep) {
  // The frame object is one level, so data may nest one less than the limit.
  const std::string ok = R"({"type":"message","data":)" + Nested(kMaxJsonDepth - 1) + "}";
  EXPECT_TRUE(ParseClientFrame(ok, kLimit).status.ok());
  ExpectError(R"({"type":"message","data":)" + Nested(kMaxJsonDepth) + "}", "nested deeper");
  ExpectError(std::string(100000, '['), "nested deeper");
}

// ----------------------------------------------------------------------------- ValidateJson

TEST(EnvelopeValidateJsonTest, AcceptsOneValue) {
  for (const char* text : {"null", "0", "-1.5e3", R"("s")", " [1, {\"a\": {}}] \n", "{}"}) {
    EXPECT_TRUE(ValidateJson(text, kLimit).ok()) << text;
  }
  EXPECT_TRUE(ValidateJson(Nested(kMaxJsonDepth), kLimit).ok());
}

TEST(EnvelopeValidateJsonTest, RefusesWithTheByte) {
  const absl::Status s = ValidateJson(R"({"a":1,})", kLimit);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("not valid JSON at byte 7"));
}

TEST(EnvelopeValidateJsonTest, RefusesBadInput) {
  for (std::string text : {std::string(""), std::string("  "), std::string("1 2"),
                           std::string("{'a':1}"), std::string("[1"), std::string("nul"),
                           std::string("\"\xFF\""), std::string("NaN"),
                           std::string("\"a\x01\""), Nested(kMaxJsonDepth + 1)}) {
    EXPECT_EQ(ValidateJson(text, kLimit).code(), absl::StatusCode::kInvalidArgument) << text;
  }
}

TEST(EnvelopeValidateJsonTest, RefusesTooLarge) {
  EXPECT_TRUE(ValidateJson("[1,2]", 5).ok());
  EXPECT_THAT(std::string(ValidateJson("[1,2]", 4).message()),
              HasSubstr("5 bytes is larger than the limit of 4"));
}

}  // namespace
}  // namespace fngate::gateway::envelope
