// Tests gateway/ws_codec.h: the handshake's keys and deflate answer, the frames the gateway
// writes, UTF-8 checking, and FrameReader against hand-built client frames: fragmentation,
// control frames between fragments, input in arbitrary pieces, permessage-deflate (including a
// decompression bomb), and every rule whose breach closes the connection with 1002/1007/1009.
#include "gateway/ws_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace fngate::gateway::ws {
namespace {

using Result = FrameReader::Result;
using ::testing::Optional;

// ---- Building client frames ----

struct FrameOptions {
  bool fin = true;
  bool rsv1 = false;
  bool rsv2 = false;
  bool rsv3 = false;
  bool masked = true;
  std::array<uint8_t, 4> mask = {0x37, 0xfa, 0x21, 0x3d};
  int length_form = 0;  // 0: the minimal one; 126 or 127: force that extended form.
  // The length to write instead of the payload's size.
  std::optional<uint64_t> claimed_length = std::nullopt;
};

std::string Frame(uint8_t opcode, std::string_view payload, const FrameOptions& o = {}) {
  std::string out;
  out.push_back(static_cast<char>((o.fin ? 0x80 : 0) | (o.rsv1 ? 0x40 : 0) | (o.rsv2 ? 0x20 : 0) |
                                  (o.rsv3 ? 0x10 : 0) | opcode));
  const uint64_t length = o.claimed_length.value_or(payload.size());
  const uint8_t mask_bit = o.masked ? 0x80 : 0;
  int form = o.length_form;
  if (form == 0) form = length < 126 ? 0 : length < 65536 ? 126 : 127;
  if (form == 0) {
    out.push_back(static_cast<char>(mask_bit | length));
  } else if (form == 126) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(length >> 8));
    out.push_back(static_cast<char>(length));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(length >> (8 * i)));
  }
  if (o.masked) {
    out.append(reinterpret_cast<const char*>(o.mask.data()), 4);
    for (size_t i = 0; i < payload.size(); ++i) {
      out.push_back(static_cast<char>(payload[i] ^ o.mask[i % 4]));
    }
  } else {
    out.append(payload);
  }
  return out;
}

std::string Frame(Opcode opcode, std::string_view payload, const FrameOptions& o = {}) {
  return Frame(static_cast<uint8_t>(opcode), payload, o);
}

// ---- Running a reader ----

struct Event {
  Result result;
  std::string data;  // The message, the control payload, or the close reason.
  bool binary = false;
  int code = 0;  // close_code() or error_code().

  bool operator==(const Event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  return os << "{result=" << static_cast<int>(e.result) << " data.size=" << e.data.size()
            << " binary=" << e.binary << " code=" << e.code << "}";
}

Event Message(std::string data, bool binary = false) {
  return {Result::kMessage, std::move(data), binary, 0};
}
Event Ping(std::string data) { return {Result::kPing, std::move(data), false, 0}; }
Event Pong(std::string data) { return {Result::kPong, std::move(data), false, 0}; }
Event Close(int code, std::string reason = "") {
  return {Result::kClose, std::move(reason), false, code};
}
Event Error(int code) { return {Result::kError, "", false, code}; }

Event Capture(FrameReader& reader, Result result) {
  switch (result) {
    case Result::kMessage: {
      const bool binary = reader.binary();
      return Message(reader.TakeMessage(), binary);
    }
    case Result::kPing:
      return Ping(std::string(reader.control_payload()));
    case Result::kPong:
      return Pong(std::string(reader.control_payload()));
    case Result::kClose:
      return Close(reader.close_code(), std::string(reader.close_reason()));
    case Result::kError:
      return Error(reader.error_code());
    case Result::kNeedMore:
      break;
  }
  ADD_FAILURE() << "kNeedMore is not an event";
  return Error(-1);
}

// Gives `wire` to the reader in the given piece sizes (the last piece takes the rest), the way a
// session would: bytes the reader leaves (an incomplete header) are given again with the next
// piece. Stops at the first error.
std::vector<Event> Feed(FrameReader& reader, std::string_view wire,
                        const std::vector<size_t>& pieces = {}) {
  std::vector<Event> events;
  std::string pending;
  size_t next = 0;
  for (size_t piece = 0; next < wire.size() || piece == 0; ++piece) {
    const size_t n =
        piece < pieces.size() ? std::min(pieces[piece], wire.size() - next) : wire.size() - next;
    pending.append(wire.substr(next, n));
    next += n;
    for (;;) {
      size_t used = 12345;
      const Result result =
          reader.Parse(reinterpret_cast<const uint8_t*>(pending.data()), pending.size(), used);
      EXPECT_LE(used, pending.size());
      pending.erase(0, used);
      if (result == Result::kNeedMore) {
        // Only an incomplete header may be left over, and it is never a whole one.
        EXPECT_LT(pending.size(), 14u);
        break;
      }
      events.push_back(Capture(reader, result));
      if (result == Result::kError) return events;
    }
  }
  return events;
}

std::vector<Event> FeedAll(std::string_view wire, uint64_t max = 1 << 20, bool deflate = false) {
  FrameReader reader(max, deflate);
  return Feed(reader, wire);
}

std::vector<Event> FeedAllDeflate(std::string_view wire, uint64_t max = 1 << 20) {
  return FeedAll(wire, max, /*deflate=*/true);
}

std::vector<Event> ErrorOnly(int code) { return {Error(code)}; }

// ---- The opening handshake ----

TEST(WsCodecTest, AcceptKeyMatchesTheRfcExample) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsCodecTest, ClientKeyValidity) {
  EXPECT_TRUE(IsValidClientKey("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(IsValidClientKey("AAAAAAAAAAAAAAAAAAAAAA=="));
  EXPECT_TRUE(IsValidClientKey("+/+/+/+/+/+/+/+/+/+/+w=="));
  EXPECT_TRUE(IsValidClientKey("abcdefghijklmnopqrstuQ=="));
  EXPECT_TRUE(IsValidClientKey("abcdefghijklmnopqrstug=="));

  EXPECT_FALSE(IsValidClientKey(""));
  EXPECT_FALSE(IsValidClientKey("dGhlIHNhbXBsZSBub25jZQ="));    // 23 characters.
  EXPECT_FALSE(IsValidClientKey("dGhlIHNhbXBsZSBub25jZQ==="));  // 25.
  EXPECT_FALSE(IsValidClientKey("dGhlIHNhbXBsZSBub25jZQAA"));   // No padding: 18 bytes.
  EXPECT_FALSE(IsValidClientKey("dGhlIHNhbXBsZSBub25jZR=="));   // Low bits set: not canonical.
  EXPECT_FALSE(IsValidClientKey("dGhlIHNhbXBsZSBub25jZB=="));
  EXPECT_FALSE(IsValidClientKey("dGhlIHNhbXBsZSBub25j*Q=="));  // Not base64.
  EXPECT_FALSE(IsValidClientKey("dGhlIHNhbXBsZSBub25j Q=="));
  EXPECT_FALSE(IsValidClientKey("dGhlIHNhbXBsZSBub25jZ=Q="));
  EXPECT_FALSE(IsValidClientKey("dGhlIHNhbX-sZSBub25jZQ=="));  // base64url is not base64.
}

constexpr std::string_view kAnswer =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

TEST(WsCodecTest, DeflatePlainOffer) {
  EXPECT_THAT(NegotiateDeflate("permessage-deflate"), Optional(std::string(kAnswer)));
}

TEST(WsCodecTest, DeflateOfferWithParams) {
  // What Chrome and Firefox send.
  EXPECT_THAT(NegotiateDeflate("permessage-deflate; client_max_window_bits"),
              Optional(std::string(kAnswer)));
  EXPECT_THAT(NegotiateDeflate("permessage-deflate; server_no_context_takeover; "
                               "client_no_context_takeover; client_max_window_bits=10"),
              Optional(std::string(kAnswer)));
  EXPECT_THAT(NegotiateDeflate("permessage-deflate; server_max_window_bits=10"),
              Optional(std::string(kAnswer) + "; server_max_window_bits=10"));
  EXPECT_THAT(NegotiateDeflate("permessage-deflate; server_max_window_bits=9"),
              Optional(std::string(kAnswer) + "; server_max_window_bits=9"));
  EXPECT_THAT(NegotiateDeflate("permessage-deflate; server_max_window_bits=15; "
                               "client_max_window_bits=8"),
              Optional(std::string(kAnswer) + "; server_max_window_bits=15"));
}

TEST(WsCodecTest, DeflateTakesTheFirstAcceptableOffer) {
  EXPECT_THAT(NegotiateDeflate("permessage-deflate; server_max_window_bits=8, "
                               "permessage-deflate; server_max_window_bits=12, "
                               "permessage-deflate"),
              Optional(std::string(kAnswer) + "; server_max_window_bits=12"));
  EXPECT_THAT(NegotiateDeflate("x-webkit-deflate-frame, permessage-deflate; foo, "
                               "permessage-deflate"),
              Optional(std::string(kAnswer)));
}

TEST(WsCodecTest, DeflateDeclinesWhatItCannotHonour) {
  // zlib's raw deflate has no 8-bit window.
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_max_window_bits=8"), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; unknown"), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; unknown=1"), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_max_window_bits"), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_max_window_bits=16"), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_max_window_bits=7"), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_max_window_bits=010"), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_max_window_bits=abc"), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; client_max_window_bits=16"), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; client_max_window_bits="), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_no_context_takeover=1"), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; client_no_context_takeover=x"), std::nullopt);
  // Duplicates.
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_no_context_takeover; "
                             "server_no_context_takeover"),
            std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; client_no_context_takeover; "
                             "client_no_context_takeover"),
            std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_max_window_bits=10; "
                             "server_max_window_bits=10"),
            std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; client_max_window_bits; "
                             "client_max_window_bits=10"),
            std::nullopt);
}

TEST(WsCodecTest, DeflateToleratesCaseWhitespaceAndQuotes) {
  EXPECT_THAT(NegotiateDeflate("  PerMessage-Deflate  "), Optional(std::string(kAnswer)));
  EXPECT_THAT(NegotiateDeflate("permessage-deflate;\tClient_Max_Window_Bits ; "
                               "SERVER_MAX_WINDOW_BITS = \"15\""),
              Optional(std::string(kAnswer) + "; server_max_window_bits=15"));
  EXPECT_THAT(NegotiateDeflate("permessage-deflate;client_max_window_bits=\"12\""),
              Optional(std::string(kAnswer)));
}

TEST(WsCodecTest, DeflateWithoutAnOffer) {
  EXPECT_EQ(NegotiateDeflate(""), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("x-webkit-deflate-frame"), std::nullopt);
  EXPECT_EQ(NegotiateDeflate("permessage-deflatex"), std::nullopt);
  EXPECT_EQ(NegotiateDeflate(" , ,"), std::nullopt);
}

// ---- Frames the gateway sends ----

std::vector<uint8_t> Header(Opcode opcode, uint64_t length, bool compressed = false) {
  uint8_t out[kMaxFrameHeaderBytes + 4];
  std::memset(out, 0xEE, sizeof(out));
  const size_t n = WriteFrameHeader(opcode, length, compressed, out);
  EXPECT_EQ(out[n], 0xEE) << "wrote past the length it returned";
  return std::vector<uint8_t>(out, out + n);
}

TEST(WsCodecTest, FrameHeaderLengthForms) {
  using V = std::vector<uint8_t>;
  EXPECT_EQ(Header(Opcode::kText, 0), (V{0x81, 0x00}));
  EXPECT_EQ(Header(Opcode::kText, 125), (V{0x81, 125}));
  EXPECT_EQ(Header(Opcode::kText, 126), (V{0x81, 126, 0x00, 126}));
  EXPECT_EQ(Header(Opcode::kBinary, 65535), (V{0x82, 126, 0xff, 0xff}));
  EXPECT_EQ(Header(Opcode::kBinary, 65536), (V{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(Header(Opcode::kBinary, 0x0102030405060708ull), (V{0x82, 127, 1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(WsCodecTest, FrameHeaderBits) {
  using V = std::vector<uint8_t>;
  EXPECT_EQ(Header(Opcode::kText, 3, /*compressed=*/true), (V{0xC1, 3}));
  EXPECT_EQ(Header(Opcode::kClose, 2), (V{0x88, 2}));
  EXPECT_EQ(Header(Opcode::kPing, 0), (V{0x89, 0}));
  EXPECT_EQ(Header(Opcode::kPong, 5), (V{0x8A, 5}));
}

TEST(WsCodecTest, ClosePayload) {
  EXPECT_EQ(ClosePayload(1005, "ignored"), "");
  EXPECT_EQ(ClosePayload(1000, ""), std::string("\x03\xe8", 2));
  EXPECT_EQ(ClosePayload(4001, "bye"), std::string("\x0f\xa1\x62ye", 5));
  const std::string ascii(200, 'a');
  EXPECT_EQ(ClosePayload(1000, ascii).size(), 125u);
  EXPECT_EQ(ClosePayload(1000, std::string(123, 'a')).size(), 125u);
}

TEST(WsCodecTest, ClosePayloadCutsOnACharacterBoundary) {
  // 122 ASCII bytes then a 3-byte character: byte 123 would fall inside it.
  const std::string reason = std::string(122, 'a') + "\xe2\x82\xac" + "tail";
  const std::string payload = ClosePayload(1001, reason);
  EXPECT_EQ(payload.size(), 2u + 122u);
  EXPECT_EQ(payload.substr(2), std::string(122, 'a'));
  EXPECT_TRUE(IsValidUtf8(payload.substr(2)));

  // Two-byte characters all the way: 123 is odd, so the cut keeps 122 bytes (61 characters).
  std::string two_byte;
  for (int i = 0; i < 80; ++i) two_byte += "\xc3\xa9";
  EXPECT_EQ(ClosePayload(1000, two_byte).size(), 2u + 122u);
  // A character that ends exactly at 123 stays.
  const std::string exact = std::string(120, 'a') + "\xe2\x82\xac" + "z";
  EXPECT_EQ(ClosePayload(1000, exact).substr(2), std::string(120, 'a') + "\xe2\x82\xac");
}

// ---- UTF-8 ----

TEST(WsCodecTest, Utf8Table) {
  struct Case {
    std::string text;
    bool valid;
  };
  const Case cases[] = {
      {"", true},
      {"plain ascii that is longer than eight bytes", true},
      {"\x7f", true},
      {"\xc2\x80", true},          // U+0080.
      {"\xdf\xbf", true},          // U+07FF.
      {"\xe0\xa0\x80", true},      // U+0800.
      {"\xed\x9f\xbf", true},      // U+D7FF.
      {"\xee\x80\x80", true},      // U+E000.
      {"\xef\xbf\xbf", true},      // U+FFFF.
      {"\xf0\x90\x80\x80", true},  // U+10000.
      {"\xf0\x9f\x98\x80", true},  // An emoji.
      {"\xf4\x8f\xbf\xbf", true},  // U+10FFFF.
      {"abcdefgh\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 ok", true},
      {"\xc0\x80", false},          // Overlong NUL.
      {"\xc1\xbf", false},          // Overlong.
      {"\xe0\x80\x80", false},      // Overlong.
      {"\xe0\x9f\xbf", false},      // Overlong U+07FF.
      {"\xf0\x80\x80\x80", false},  // Overlong.
      {"\xf0\x8f\xbf\xbf", false},  // Overlong U+FFFF.
      {"\xed\xa0\x80", false},      // U+D800.
      {"\xed\xbf\xbf", false},      // U+DFFF.
      {"\xf4\x90\x80\x80", false},  // U+110000.
      {"\xf5\x80\x80\x80", false},
      {"\xff", false},
      {"\x80", false},  // A lone continuation.
      {"abcdefghij\xbf", false},
      {"\xc2", false},  // Truncated.
      {"\xe2\x82", false},
      {"\xf0\x9f\x98", false},
      {"\xe2\x82\x61", false},  // Continuation missing mid-string.
      {"\xc2\xc2\x80", false},
      {"abcdefgh\xf0\x9f\x98\x80\x80", false},  // One continuation too many.
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IsValidUtf8(c.text), c.valid) << ::testing::PrintToString(c.text);
  }
}

TEST(WsCodecTest, Utf8FindsABadByteAfterLongAscii) {
  // The eight-bytes-at-a-time path must hand over at every alignment.
  for (size_t prefix = 0; prefix < 24; ++prefix) {
    const std::string good = std::string(prefix, 'x') + "\xc3\xa9" + std::string(prefix, 'y');
    const std::string bad = std::string(prefix, 'x') + "\xc3" + std::string(prefix + 1, 'y');
    EXPECT_TRUE(IsValidUtf8(good)) << prefix;
    EXPECT_FALSE(IsValidUtf8(bad)) << prefix;
  }
}

// ---- FrameReader: messages ----

TEST(FrameReaderTest, SingleFrameTextAndBinary) {
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, "hello")), std::vector<Event>{Message("hello")});
  const std::string bytes("\x00\xff\x80\x01", 4);
  EXPECT_EQ(FeedAll(Frame(Opcode::kBinary, bytes)),
            std::vector<Event>{Message(bytes, /*binary=*/true)});
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, "")), std::vector<Event>{Message("")});
}

TEST(FrameReaderTest, EveryLengthForm) {
  for (size_t size : {125, 126, 127, 65535, 65536, 70001}) {
    std::string payload(size, '\0');
    for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>('a' + i % 26);
    EXPECT_EQ(FeedAll(Frame(Opcode::kText, payload)), std::vector<Event>{Message(payload)}) << size;
  }
}

TEST(FrameReaderTest, ZeroMaskAndOddMasks) {
  for (const std::array<uint8_t, 4> mask :
       {std::array<uint8_t, 4>{0, 0, 0, 0}, std::array<uint8_t, 4>{0xff, 0xff, 0xff, 0xff},
        std::array<uint8_t, 4>{1, 2, 3, 4}}) {
    EXPECT_EQ(FeedAll(Frame(Opcode::kText, "masked payload!", {.mask = mask})),
              std::vector<Event>{Message("masked payload!")});
  }
}

TEST(FrameReaderTest, FragmentedMessage) {
  const std::string wire = Frame(Opcode::kText, "Hel", {.fin = false}) +
                           Frame(Opcode::kContinuation, "lo, ", {.fin = false}) +
                           Frame(Opcode::kContinuation, "", {.fin = false}) +
                           Frame(Opcode::kContinuation, "world");
  EXPECT_EQ(FeedAll(wire), std::vector<Event>{Message("Hello, world")});
}

TEST(FrameReaderTest, FragmentedBinaryThenText) {
  const std::string wire = Frame(Opcode::kBinary, "ab", {.fin = false}) +
                           Frame(Opcode::kContinuation, "cd") + Frame(Opcode::kText, "ef");
  EXPECT_EQ(FeedAll(wire), (std::vector<Event>{Message("abcd", true), Message("ef", false)}));
}

TEST(FrameReaderTest, ControlFramesBetweenFragments) {
  const std::string wire = Frame(Opcode::kText, "one ", {.fin = false}) +
                           Frame(Opcode::kPing, "p1") +
                           Frame(Opcode::kContinuation, "two ", {.fin = false}) +
                           Frame(Opcode::kPong, "") + Frame(Opcode::kPing, "p2") +
                           Frame(Opcode::kContinuation, "three") + Frame(Opcode::kPing, "after");
  EXPECT_EQ(FeedAll(wire), (std::vector<Event>{Ping("p1"), Pong(""), Ping("p2"),
                                               Message("one two three"), Ping("after")}));
}

TEST(FrameReaderTest, CloseBetweenFragmentsIsReported) {
  const std::string wire = Frame(Opcode::kText, "half", {.fin = false}) +
                           Frame(Opcode::kClose, ClosePayload(1000, "done"));
  EXPECT_EQ(FeedAll(wire), std::vector<Event>{Close(1000, "done")});
}

TEST(FrameReaderTest, MaximumControlPayload) {
  const std::string payload(125, 'p');
  EXPECT_EQ(FeedAll(Frame(Opcode::kPing, payload)), std::vector<Event>{Ping(payload)});
}

TEST(FrameReaderTest, TakeMessageEmptiesTheReader) {
  FrameReader reader(1 << 20, false);
  const std::string wire = Frame(Opcode::kText, "first");
  size_t used = 0;
  ASSERT_EQ(reader.Parse(reinterpret_cast<const uint8_t*>(wire.data()), wire.size(), used),
            Result::kMessage);
  EXPECT_EQ(reader.TakeMessage(), "first");
  EXPECT_EQ(reader.TakeMessage(), "");
  EXPECT_EQ(Feed(reader, Frame(Opcode::kBinary, "second")),
            std::vector<Event>{Message("second", true)});
}

// ---- FrameReader: how it takes bytes ----

const uint8_t* Bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

TEST(FrameReaderTest, StopsAfterEachMessageOrControlFrame) {
  const std::string first = Frame(Opcode::kText, "a");
  const std::string second = Frame(Opcode::kPing, "bb");
  const std::string third = Frame(Opcode::kBinary, "ccc");
  const std::string wire = first + second + third;
  FrameReader reader(1 << 20, false);
  size_t used = 0;
  ASSERT_EQ(reader.Parse(Bytes(wire), wire.size(), used), Result::kMessage);
  EXPECT_EQ(used, first.size());
  EXPECT_EQ(reader.TakeMessage(), "a");
  size_t offset = used;
  ASSERT_EQ(reader.Parse(Bytes(wire) + offset, wire.size() - offset, used), Result::kPing);
  EXPECT_EQ(used, second.size());
  EXPECT_EQ(reader.control_payload(), "bb");
  offset += used;
  ASSERT_EQ(reader.Parse(Bytes(wire) + offset, wire.size() - offset, used), Result::kMessage);
  EXPECT_EQ(used, third.size());
  EXPECT_EQ(reader.TakeMessage(), "ccc");
  EXPECT_TRUE(reader.binary());
  ASSERT_EQ(reader.Parse(nullptr, 0, used), Result::kNeedMore);
  EXPECT_EQ(used, 0u);
}

TEST(FrameReaderTest, LeavesAnIncompleteHeaderButCountsWhatCameBefore) {
  const std::string fragment = Frame(Opcode::kText, "abc", {.fin = false});
  const std::string last = Frame(Opcode::kContinuation, "def");
  FrameReader reader(1 << 20, false);
  for (size_t partial = 0; partial < 6; ++partial) {  // The last frame's header is 6 bytes.
    FrameReader r(1 << 20, false);
    const std::string wire = fragment + last.substr(0, partial);
    size_t used = 0;
    EXPECT_EQ(r.Parse(Bytes(wire), wire.size(), used), Result::kNeedMore);
    EXPECT_EQ(used, fragment.size()) << partial;
    const std::string rest = last;
    EXPECT_EQ(r.Parse(Bytes(rest), rest.size(), used), Result::kMessage);
    EXPECT_EQ(used, rest.size());
    EXPECT_EQ(r.TakeMessage(), "abcdef");
  }
}

TEST(FrameReaderTest, TakesPayloadBytesAsTheyCome) {
  const std::string wire = Frame(Opcode::kText, "0123456789");
  FrameReader reader(1 << 20, false);
  size_t used = 0;
  EXPECT_EQ(reader.Parse(Bytes(wire), 9, used), Result::kNeedMore);  // Header + 3 bytes.
  EXPECT_EQ(used, 9u);
  EXPECT_EQ(reader.Parse(Bytes(wire) + 9, 4, used), Result::kNeedMore);
  EXPECT_EQ(used, 4u);
  EXPECT_EQ(reader.Parse(Bytes(wire) + 13, wire.size() - 13, used), Result::kMessage);
  EXPECT_EQ(used, wire.size() - 13);
  EXPECT_EQ(reader.TakeMessage(), "0123456789");
}

// A mix of everything the reader handles, with payloads whose lengths are not multiples of the
// mask and every length form, so that pieces cut headers, masks and payloads anywhere.
std::string Conversation() {
  std::string big(70000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  return Frame(Opcode::kText, "h\xc3\xa9llo w\xc3\xb6rld", {.mask = {9, 8, 7, 6}}) +
         Frame(Opcode::kBinary, big, {.fin = false}) + Frame(Opcode::kPing, "ping!") +
         Frame(Opcode::kContinuation, std::string(300, 'x'), {.fin = false}) +
         Frame(Opcode::kContinuation, "end") +
         Frame(Opcode::kText, std::string(126, 'm'), {.mask = {0xa1, 0xb2, 0xc3, 0xd4}}) +
         Frame(Opcode::kPong, "") + Frame(Opcode::kText, "\xe2\x82", {.fin = false}) +
         Frame(Opcode::kContinuation, "\xac") +  // A character split between fragments.
         Frame(Opcode::kClose, ClosePayload(1000, "bye"));
}

std::vector<Event> ConversationEvents() {
  std::string big(70000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  return {Message("h\xc3\xa9llo w\xc3\xb6rld"),
          Ping("ping!"),
          Message(big + std::string(300, 'x') + "end", true),
          Message(std::string(126, 'm')),
          Pong(""),
          Message("\xe2\x82\xac"),
          Close(1000, "bye")};
}

TEST(FrameReaderTest, WholeConversationAtOnce) {
  EXPECT_EQ(FeedAll(Conversation()), ConversationEvents());
}

TEST(FrameReaderTest, OneByteAtATime) {
  const std::string wire = Conversation();
  FrameReader reader(1 << 20, false);
  EXPECT_EQ(Feed(reader, wire, std::vector<size_t>(wire.size(), 1)), ConversationEvents());
}

TEST(FrameReaderTest, RandomPieces) {
  const std::string wire = Conversation();
  std::mt19937 random(20240611);  // Fixed: a failure must be reproducible.
  for (int round = 0; round < 50; ++round) {
    std::uniform_int_distribution<size_t> size(1, round % 2 == 0 ? 16 : 5000);
    std::vector<size_t> pieces;
    for (size_t total = 0; total < wire.size(); total += pieces.back()) {
      pieces.push_back(size(random));
    }
    FrameReader reader(1 << 20, false);
    EXPECT_EQ(Feed(reader, wire, pieces), ConversationEvents()) << "round " << round;
  }
}

// ---- FrameReader: close frames ----

TEST(FrameReaderTest, CloseWithoutACode) {
  EXPECT_EQ(FeedAll(Frame(Opcode::kClose, "")), std::vector<Event>{Close(1005)});
}

TEST(FrameReaderTest, CloseCodesAndReasons) {
  for (int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
                   3999, 4000, 4999}) {
    EXPECT_EQ(FeedAll(Frame(Opcode::kClose, ClosePayload(code, "r\u00e9ason"))),
              std::vector<Event>{Close(code, "r\u00e9ason")})
        << code;
  }
  const std::string reason(123, 'z');
  EXPECT_EQ(FeedAll(Frame(Opcode::kClose, ClosePayload(4321, reason))),
            std::vector<Event>{Close(4321, reason)});
}

TEST(FrameReaderTest, CloseCodesNotAllowedOnTheWire) {
  for (int code : {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    const std::string payload = {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
    EXPECT_EQ(FeedAll(Frame(Opcode::kClose, payload)), ErrorOnly(1002)) << code;
  }
}

TEST(FrameReaderTest, CloseWithOneByte) {
  EXPECT_EQ(FeedAll(Frame(Opcode::kClose, "\x03")), ErrorOnly(1002));
  // 0x0c would be the high byte of 3072, an allowed code: the length alone must fail it.
  EXPECT_EQ(FeedAll(Frame(Opcode::kClose, "\x0c")), ErrorOnly(1002));
}

TEST(FrameReaderTest, CloseReasonThatIsNotUtf8) {
  FrameReader reader(1 << 20, false);
  EXPECT_EQ(Feed(reader, Frame(Opcode::kClose, ClosePayload(1000, "bad \xed\xa0\x80"))),
            ErrorOnly(1002));
  EXPECT_FALSE(reader.error_reason().empty());
}

// ---- FrameReader: protocol errors (1002) ----

TEST(FrameReaderTest, ReservedBits) {
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, "x", {.rsv2 = true})), ErrorOnly(1002));
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, "x", {.rsv3 = true})), ErrorOnly(1002));
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kText, "x", {.rsv2 = true})), ErrorOnly(1002));
  // RSV1 means compressed, which only permessage-deflate allows, and only on a first frame.
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, DeflateMessage("x"), {.rsv1 = true})), ErrorOnly(1002));
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kPing, "", {.rsv1 = true})), ErrorOnly(1002));
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kClose, "", {.rsv1 = true})), ErrorOnly(1002));
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kText, "a", {.fin = false}) +
                           Frame(Opcode::kContinuation, "b", {.rsv1 = true})),
            ErrorOnly(1002));
}

TEST(FrameReaderTest, ReservedOpcodes) {
  for (uint8_t opcode : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    EXPECT_EQ(FeedAll(Frame(opcode, "")), ErrorOnly(1002)) << int{opcode};
  }
}

TEST(FrameReaderTest, FragmentedControlFrame) {
  EXPECT_EQ(FeedAll(Frame(Opcode::kPing, "a", {.fin = false})), ErrorOnly(1002));
  EXPECT_EQ(FeedAll(Frame(Opcode::kClose, "", {.fin = false})), ErrorOnly(1002));
}

TEST(FrameReaderTest, ControlPayloadOver125) {
  EXPECT_EQ(FeedAll(Frame(Opcode::kPing, std::string(126, 'p'))), ErrorOnly(1002));
  EXPECT_EQ(FeedAll(Frame(Opcode::kPong, std::string(70000, 'p'))), ErrorOnly(1002));
  EXPECT_EQ(FeedAll(Frame(Opcode::kClose, ClosePayload(1000, "") + std::string(124, 'r'))),
            ErrorOnly(1002));
}

TEST(FrameReaderTest, UnmaskedFrame) {
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, "hi", {.masked = false})), ErrorOnly(1002));
  EXPECT_EQ(FeedAll(Frame(Opcode::kPing, "", {.masked = false})), ErrorOnly(1002));
}

TEST(FrameReaderTest, ContinuationWithoutAMessage) {
  EXPECT_EQ(FeedAll(Frame(Opcode::kContinuation, "x")), ErrorOnly(1002));
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, "x") + Frame(Opcode::kContinuation, "y")),
            (std::vector<Event>{Message("x"), Error(1002)}));
}

TEST(FrameReaderTest, NewMessageWhileOneIsInProgress) {
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, "x", {.fin = false}) + Frame(Opcode::kText, "y")),
            ErrorOnly(1002));
  EXPECT_EQ(FeedAll(Frame(Opcode::kBinary, "x", {.fin = false}) + Frame(Opcode::kBinary, "y")),
            ErrorOnly(1002));
}

TEST(FrameReaderTest, NonMinimalLengths) {
  // The same lengths in the minimal form are fine.
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, std::string(126, 'a'), {.length_form = 126})),
            std::vector<Event>{Message(std::string(126, 'a'))});
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, std::string(65536, 'a'), {.length_form = 127})),
            std::vector<Event>{Message(std::string(65536, 'a'))});

  EXPECT_EQ(FeedAll(Frame(Opcode::kText, "abc", {.length_form = 126})), ErrorOnly(1002));
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, std::string(125, 'a'), {.length_form = 126})),
            ErrorOnly(1002));
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, "abc", {.length_form = 127})), ErrorOnly(1002));
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, std::string(65535, 'a'), {.length_form = 127})),
            ErrorOnly(1002));
}

TEST(FrameReaderTest, LengthWithTheTopBitSet) {
  const std::string wire =
      Frame(Opcode::kBinary, "", {.length_form = 127, .claimed_length = 1ull << 63});
  EXPECT_EQ(FeedAll(wire, /*max=*/UINT64_MAX), ErrorOnly(1002));
}

TEST(FrameReaderTest, StaysBrokenAfterAnError) {
  FrameReader reader(1 << 20, false);
  EXPECT_EQ(Feed(reader, Frame(Opcode::kText, "x", {.masked = false})), ErrorOnly(1002));
  const std::string good = Frame(Opcode::kText, "fine");
  for (int i = 0; i < 3; ++i) {
    size_t used = 99;
    EXPECT_EQ(reader.Parse(Bytes(good), good.size(), used), Result::kError);
    EXPECT_EQ(used, 0u);
    EXPECT_EQ(reader.error_code(), 1002);
    EXPECT_EQ(reader.error_reason(), "protocol error");
  }
}

// ---- FrameReader: invalid UTF-8 (1007) ----

TEST(FrameReaderTest, InvalidUtf8InATextMessage) {
  FrameReader reader(1 << 20, false);
  EXPECT_EQ(Feed(reader, Frame(Opcode::kText, "bad \xc0\x80")), ErrorOnly(1007));
  EXPECT_EQ(reader.error_reason(), "invalid utf-8");
  // Binary messages carry any bytes.
  EXPECT_EQ(FeedAll(Frame(Opcode::kBinary, "\xc0\x80")),
            std::vector<Event>{Message("\xc0\x80", true)});
}

TEST(FrameReaderTest, InvalidUtf8SplitAcrossFragments) {
  // Each fragment alone could be the start or end of a character; together they are a surrogate.
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, "ok \xed", {.fin = false}) +
                    Frame(Opcode::kContinuation, "\xa0", {.fin = false}) +
                    Frame(Opcode::kContinuation, "\x80 ok")),
            ErrorOnly(1007));
  // A message may not end inside a character.
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, "ok ", {.fin = false}) +
                    Frame(Opcode::kContinuation, "\xe2\x82")),
            ErrorOnly(1007));
}

// ---- FrameReader: the size limit (1009) ----

TEST(FrameReaderTest, MessageAtTheLimitPasses) {
  EXPECT_EQ(FeedAll(Frame(Opcode::kBinary, std::string(100, 'b')), /*max=*/100),
            std::vector<Event>{Message(std::string(100, 'b'), true)});
  EXPECT_EQ(FeedAll(Frame(Opcode::kBinary, std::string(60, 'b'), {.fin = false}) +
                        Frame(Opcode::kContinuation, std::string(40, 'b')),
                    /*max=*/100),
            std::vector<Event>{Message(std::string(100, 'b'), true)});
}

TEST(FrameReaderTest, FrameHeaderOverTheLimitFailsBeforeAnyPayload) {
  // Only the header: the reader must not wait for (or buffer) a megabyte to say no.
  const std::string header =
      Frame(Opcode::kBinary, "", {.length_form = 127, .claimed_length = 1 << 20});
  ASSERT_EQ(header.size(), 14u);
  FrameReader reader(/*max_message_bytes=*/64 * 1024, false);
  size_t used = 0;
  EXPECT_EQ(reader.Parse(Bytes(header), header.size(), used), Result::kError);
  EXPECT_EQ(reader.error_code(), 1009);
  EXPECT_EQ(reader.error_reason(), "message too big");
  EXPECT_EQ(FeedAll(Frame(Opcode::kText, std::string(101, 't')), /*max=*/100), ErrorOnly(1009));
}

TEST(FrameReaderTest, FragmentedMessageCrossingTheLimit) {
  const std::string first = Frame(Opcode::kText, std::string(60, 'a'), {.fin = false});
  const std::string second_header = Frame(Opcode::kContinuation, "", {.claimed_length = 41});
  EXPECT_EQ(FeedAll(first + second_header, /*max=*/100), ErrorOnly(1009));
  // Control frames in between do not count, and each new message starts from zero.
  EXPECT_EQ(
      FeedAll(Frame(Opcode::kText, std::string(90, 'a')) + Frame(Opcode::kPing, "pp") +
                  Frame(Opcode::kText, std::string(90, 'b'), {.fin = false}) +
                  Frame(Opcode::kPing, std::string(100, 'q')) +
                  Frame(Opcode::kContinuation, std::string(10, 'c')),
              /*max=*/100),
      (std::vector<Event>{Message(std::string(90, 'a')), Ping("pp"), Ping(std::string(100, 'q')),
                          Message(std::string(90, 'b') + std::string(10, 'c'))}));
}

// ---- FrameReader: permessage-deflate ----

TEST(FrameReaderTest, DeflateRoundTrip) {
  std::string json;
  for (int i = 0; i < 2000; ++i) json += "{\"seq\":" + std::to_string(i) + ",\"ok\":true}";
  for (const std::string& text :
       {std::string(""), std::string("a"), std::string("h\xc3\xa9llo"), json}) {
    const std::string compressed = DeflateMessage(text);
    EXPECT_FALSE(compressed.empty());
    EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kText, compressed, {.rsv1 = true})),
              std::vector<Event>{Message(text)})
        << text.size();
  }
  EXPECT_LT(DeflateMessage(json).size(), json.size() / 4);
  // Binary, and an uncompressed message on the same reader.
  FrameReader reader(1 << 20, true);
  EXPECT_EQ(Feed(reader, Frame(Opcode::kBinary, DeflateMessage(json), {.rsv1 = true}) +
                             Frame(Opcode::kText, "plain") +
                             Frame(Opcode::kText, DeflateMessage("again"), {.rsv1 = true})),
            (std::vector<Event>{Message(json, true), Message("plain"), Message("again")}));
}

TEST(FrameReaderTest, DeflateMessageHasNoTail) {
  const std::string compressed = DeflateMessage("hello hello hello");
  ASSERT_GE(compressed.size(), 4u);
  EXPECT_NE(compressed.substr(compressed.size() - 4), std::string("\x00\x00\xff\xff", 4));
}

TEST(FrameReaderTest, DeflateFragmentedWithControlFramesAndPieces) {
  std::string text;
  for (int i = 0; i < 500; ++i) text += "fragment " + std::to_string(i) + " \xe2\x82\xac; ";
  const std::string compressed = DeflateMessage(text);
  ASSERT_GT(compressed.size(), 30u);
  const size_t a = compressed.size() / 3;
  const size_t b = 2 * compressed.size() / 3;
  const std::string wire =
      Frame(Opcode::kText, compressed.substr(0, a), {.fin = false, .rsv1 = true}) +
      Frame(Opcode::kPing, "between") +
      Frame(Opcode::kContinuation, compressed.substr(a, b - a), {.fin = false}) +
      Frame(Opcode::kContinuation, compressed.substr(b)) + Frame(Opcode::kText, "next");
  const std::vector<Event> expected = {Ping("between"), Message(text), Message("next")};
  EXPECT_EQ(FeedAllDeflate(wire), expected);
  FrameReader reader(1 << 20, true);
  EXPECT_EQ(Feed(reader, wire, std::vector<size_t>(wire.size(), 1)), expected);
}

TEST(FrameReaderTest, DeflateWithAFinalBlock) {
  // RFC 7692 section 7.2.3.4: "Hello" as a final fixed-Huffman block.
  const std::string final_block("\xf3\x48\xcd\xc9\xc9\x07\x00", 7);
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kText, final_block, {.rsv1 = true})),
            std::vector<Event>{Message("Hello")});
  // Section 7.2.1 read literally leaves a 0x00 after it; DEFLATE ends at a final block, so
  // whatever follows is ignored.
  EXPECT_EQ(
      FeedAllDeflate(Frame(Opcode::kText, final_block + std::string(1, '\0'), {.rsv1 = true})),
      std::vector<Event>{Message("Hello")});
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kText, final_block + DeflateMessage("x"), {.rsv1 = true})),
            std::vector<Event>{Message("Hello")});
}

TEST(FrameReaderTest, DeflateRfcExampleBlocks) {
  // RFC 7692 section 7.2.3.1 and 7.2.3.3 (one compressed block; one stored block).
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kText, std::string("\xf2\x48\xcd\xc9\xc9\x07\x00", 7),
                                 {.rsv1 = true})),
            std::vector<Event>{Message("Hello")});
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kText,
                                 std::string("\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00", 11),
                                 {.rsv1 = true})),
            std::vector<Event>{Message("Hello")});
}

TEST(FrameReaderTest, CorruptCompressedData) {
  FrameReader reader(1 << 20, true);
  // BTYPE 11 is reserved in deflate.
  EXPECT_EQ(Feed(reader, Frame(Opcode::kText, "\xff\xff\xff\xff", {.rsv1 = true})),
            ErrorOnly(1007));
  EXPECT_EQ(reader.error_reason(), "invalid compressed data");
  // A stored block whose length check fails.
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kBinary, std::string("\x00\x05\x00\x00\x00hello", 10),
                                 {.rsv1 = true})),
            ErrorOnly(1007));
}

TEST(FrameReaderTest, TruncatedCompressedData) {
  const std::string compressed = DeflateMessage(std::string(1000, 'x') + "abcdefghijklmnop");
  ASSERT_GT(compressed.size(), 6u);
  EXPECT_EQ(FeedAllDeflate(
                Frame(Opcode::kText, compressed.substr(0, compressed.size() - 3), {.rsv1 = true})),
            ErrorOnly(1007));
}

TEST(FrameReaderTest, InvalidUtf8AfterInflation) {
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kText, DeflateMessage("ok \xed\xa0\x80"), {.rsv1 = true})),
            ErrorOnly(1007));
  EXPECT_EQ(
      FeedAllDeflate(Frame(Opcode::kBinary, DeflateMessage("ok \xed\xa0\x80"), {.rsv1 = true})),
      std::vector<Event>{Message("ok \xed\xa0\x80", true)});
}

TEST(FrameReaderTest, InflatedSizeLimit) {
  const std::string exact(1000, 'z');
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kText, DeflateMessage(exact), {.rsv1 = true}),
                           /*max=*/1000),
            std::vector<Event>{Message(exact)});
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kText, DeflateMessage(exact + "z"), {.rsv1 = true}),
                           /*max=*/1000),
            ErrorOnly(1009));
}

TEST(FrameReaderTest, DecompressionBomb) {
  const std::string zeros(10 << 20, '\0');
  const std::string bomb = DeflateMessage(zeros);
  constexpr uint64_t kLimit = 64 * 1024;
  ASSERT_LT(bomb.size(), kLimit) << "the bomb must pass the wire-size check to test inflation";
  FrameReader reader(kLimit, true);
  EXPECT_EQ(Feed(reader, Frame(Opcode::kBinary, bomb, {.rsv1 = true})), ErrorOnly(1009));
  // The same, fragmented and fed in pieces.
  FrameReader pieces(kLimit, true);
  const std::string wire =
      Frame(Opcode::kBinary, bomb.substr(0, 100), {.fin = false, .rsv1 = true}) +
      Frame(Opcode::kContinuation, bomb.substr(100));
  EXPECT_EQ(Feed(pieces, wire, std::vector<size_t>(wire.size() / 7 + 1, 7)), ErrorOnly(1009));
}

TEST(FrameReaderTest, CompressedBytesOverTheLimit) {
  // Even when they would inflate to nothing: empty stored blocks, 5 bytes each, and as RFC 7692
  // section 7.2.1 has it, the last one without its final 00 00 ff ff.
  auto empties = [](int count) {
    std::string out;
    for (int i = 0; i < count; ++i) out += std::string("\x00\x00\x00\xff\xff", 5);
    return out.substr(0, out.size() - 4);
  };
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kBinary, empties(200), {.rsv1 = true}), /*max=*/1000),
            std::vector<Event>{Message("", true)});
  EXPECT_EQ(FeedAllDeflate(Frame(Opcode::kBinary, empties(201), {.rsv1 = true}), /*max=*/1000),
            ErrorOnly(1009));
  // Over the limit in fragments of 996 and 5 bytes.
  const std::string many = empties(201);
  EXPECT_EQ(
      FeedAllDeflate(Frame(Opcode::kBinary, many.substr(0, 996), {.fin = false, .rsv1 = true}) +
                         Frame(Opcode::kContinuation, many.substr(996)),
                     /*max=*/1000),
      ErrorOnly(1009));
}

}  // namespace
}  // namespace fngate::gateway::ws
