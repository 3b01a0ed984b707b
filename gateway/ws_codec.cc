#include "gateway/ws_codec.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "gateway/outbound.h"  // The close-code rules and the reason limit, shared.

namespace fngate::gateway::ws {
namespace {

// RFC 6455 section 1.3.
constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// What a sync flush ends with; RFC 7692 section 7.2.1 takes it off the wire, 7.2.2 puts it back.
constexpr uint8_t kDeflateTail[4] = {0x00, 0x00, 0xff, 0xff};

// Inflate and unmask work in slices of this size: it bounds what a decompression bomb can make
// us allocate beyond the message limit, and the stack buffer a compressed payload is unmasked into.
constexpr size_t kChunkBytes = 16 * 1024;

// Raw deflate cannot use 8 (zlib turns it into 9), so 9 is our window whatever the client
// allowed; NegotiateDeflate declines offers that ask for less.
constexpr int kDeflateWindowBits = 9;

// ---- Small text helpers for the extension header ----

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// A window-bits value (RFC 7692 section 7.1.2: 8..15, no leading zero), possibly quoted
// (section 7.1: a quoted-string must unquote to the same token). 0 when malformed.
int ParseWindowBits(std::string_view value) {
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  if (value.size() == 1 && value[0] >= '8' && value[0] <= '9') return value[0] - '0';
  if (value.size() == 2 && value[0] == '1' && value[1] >= '0' && value[1] <= '5') {
    return 10 + (value[1] - '0');
  }
  return 0;
}

// One permessage-deflate offer's parameters (everything after the name); nullopt when we
// cannot honour them, else the server_max_window_bits the client asked for (0: none).
std::optional<int> AcceptableOffer(std::string_view params) {
  bool seen_server_no_takeover = false;
  bool seen_client_no_takeover = false;
  bool seen_client_bits = false;
  int server_bits = 0;
  while (!params.empty()) {
    const size_t semi = params.find(';');
    std::string_view param = Trim(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);

    std::string_view name = param;
    std::optional<std::string_view> value;
    if (const size_t eq = param.find('='); eq != std::string_view::npos) {
      name = Trim(param.substr(0, eq));
      value = Trim(param.substr(eq + 1));
    }
    bool* seen = nullptr;
    if (EqualsIgnoreCase(name, "server_no_context_takeover")) {
      seen = &seen_server_no_takeover;
      if (value) return std::nullopt;
    } else if (EqualsIgnoreCase(name, "client_no_context_takeover")) {
      seen = &seen_client_no_takeover;
      if (value) return std::nullopt;
    } else if (EqualsIgnoreCase(name, "client_max_window_bits")) {
      // Only a hint that the client can take a smaller window from us; we inflate with 15,
      // which reads any window the client chooses.
      seen = &seen_client_bits;
      if (value && ParseWindowBits(*value) == 0) return std::nullopt;
    } else if (EqualsIgnoreCase(name, "server_max_window_bits")) {
      if (server_bits != 0 || !value) return std::nullopt;
      server_bits = ParseWindowBits(*value);
      if (server_bits < kDeflateWindowBits) return std::nullopt;  // Malformed, or 8.
      continue;
    } else {
      return std::nullopt;  // Unknown, or empty (a stray ';').
    }
    if (*seen) return std::nullopt;
    *seen = true;
  }
  return server_bits;
}

// Unmasks `size` bytes that start `offset` bytes into the mask's cycle. Eight bytes at a time:
// this runs over every byte a client sends.
void Unmask(const uint8_t* in, size_t size, const uint8_t mask[4], size_t offset, uint8_t* out) {
  uint8_t rotated[8];
  for (size_t i = 0; i < 8; ++i) rotated[i] = mask[(offset + i) & 3];
  uint64_t mask64;
  std::memcpy(&mask64, rotated, 8);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, in + i, 8);
    word ^= mask64;
    std::memcpy(out + i, &word, 8);
  }
  for (; i < size; ++i) out[i] = in[i] ^ rotated[i & 7];
}

void AppendUnmasked(std::string& out, const uint8_t* in, size_t size, const uint8_t mask[4],
                    size_t offset) {
  const size_t old = out.size();
  out.resize(old + size);
  Unmask(in, size, mask, offset, reinterpret_cast<uint8_t*>(out.data() + old));
}

}  // namespace

// ---- The opening handshake ----

bool IsValidClientKey(std::string_view key) {
  // 16 bytes make five full groups of three and one byte left: 22 characters, "==", and the
  // last character before it carries only the byte's low two bits (its own low four are zero),
  // so anything but A, Q, g or w there would decode to more than 16 bytes' worth of bits.
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (size_t i = 0; i < 21; ++i) {
    const char c = key[i];
    const bool base64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!base64) return false;
  }
  return key[21] == 'A' || key[21] == 'Q' || key[21] == 'g' || key[21] == 'w';
}

std::string AcceptKey(std::string_view client_key) {
  std::string input;
  input.reserve(client_key.size() + kAcceptGuid.size());
  input.append(client_key);
  input.append(kAcceptGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];  // EVP_EncodeBlock adds a NUL.
  const int length = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(encoded), static_cast<size_t>(length));
}

std::optional<std::string> NegotiateDeflate(std::string_view extensions) {
  while (!extensions.empty()) {
    const size_t comma = extensions.find(',');
    const std::string_view offer = extensions.substr(0, comma);
    extensions =
        comma == std::string_view::npos ? std::string_view() : extensions.substr(comma + 1);

    const size_t semi = offer.find(';');
    if (!EqualsIgnoreCase(Trim(offer.substr(0, semi)), "permessage-deflate")) continue;
    const std::optional<int> server_bits = AcceptableOffer(
        semi == std::string_view::npos ? std::string_view() : offer.substr(semi + 1));
    if (!server_bits) continue;
    std::string answer =
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    if (*server_bits != 0) {
      // An echo is required (RFC 7692 section 7.1.2.1); we deflate with 9, within any N >= 9.
      answer += "; server_max_window_bits=" + std::to_string(*server_bits);
    }
    return answer;
  }
  return std::nullopt;
}

// ---- Frames the gateway sends ----

size_t WriteFrameHeader(Opcode opcode, uint64_t payload_bytes, bool compressed, uint8_t* out) {
  out[0] = static_cast<uint8_t>(0x80 | (compressed ? 0x40 : 0) | static_cast<uint8_t>(opcode));
  if (payload_bytes < 126) {
    out[1] = static_cast<uint8_t>(payload_bytes);
    return 2;
  }
  if (payload_bytes < 65536) {
    out[1] = 126;
    out[2] = static_cast<uint8_t>(payload_bytes >> 8);
    out[3] = static_cast<uint8_t>(payload_bytes);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(payload_bytes >> (56 - 8 * i));
  return 10;
}

std::string_view FitCloseReason(std::string_view reason) {
  if (reason.size() <= kMaxCloseReasonBytes) return reason;
  size_t cut = kMaxCloseReasonBytes;
  // Back up over continuation bytes so the cut lands before a character, not inside one.
  while (cut > 0 && (static_cast<uint8_t>(reason[cut]) & 0xC0) == 0x80) --cut;
  return reason.substr(0, cut);
}

std::string ClosePayload(int code, std::string_view reason) {
  if (code == 1005) return std::string();
  reason = FitCloseReason(reason);
  std::string out;
  out.reserve(2 + reason.size());
  out.push_back(static_cast<char>((code >> 8) & 0xFF));
  out.push_back(static_cast<char>(code & 0xFF));
  out.append(reason);
  return out;
}

namespace {

// One compressor per thread, reset for each message (no context takeover): deflateInit2 costs
// about 130 KB of allocation, far more than compressing a typical message.
class ThreadDeflater {
 public:
  ThreadDeflater() {
    // Level 1: the gateway compresses every message it sends, so speed beats the last few
    // percent.
    ok_ = deflateInit2(&z_, 1, Z_DEFLATED, -kDeflateWindowBits, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~ThreadDeflater() {
    if (ok_) deflateEnd(&z_);
  }
  ThreadDeflater(const ThreadDeflater&) = delete;
  ThreadDeflater& operator=(const ThreadDeflater&) = delete;

  // Null on allocation failure.
  z_stream* Fresh() {
    if (!ok_) return nullptr;
    deflateReset(&z_);
    return &z_;
  }

 private:
  z_stream z_{};
  bool ok_ = false;
};

}  // namespace

std::string DeflateMessage(std::string_view message) {
  thread_local ThreadDeflater deflater;
  z_stream* z = deflater.Fresh();
  if (z == nullptr) return std::string();  // An empty result is never valid input.
  std::string out;
  // deflateBound covers a finished stream; a sync flush adds at most an empty stored block.
  out.resize(deflateBound(z, message.size()) + 16);
  z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
  z->avail_in = static_cast<uInt>(message.size());
  size_t produced = 0;
  for (;;) {
    z->next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    z->avail_out = static_cast<uInt>(out.size() - produced);
    const int rc = deflate(z, Z_SYNC_FLUSH);
    produced = out.size() - z->avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    // A full output buffer may hide more output; anything else means the flush is complete.
    if (z->avail_out != 0) break;
    out.resize(out.size() * 2);
  }
  out.erase(produced);  // Shrinks only (resize here trips g++ 12's -Wstringop-overflow).
  if (out.size() >= 4 && std::memcmp(out.data() + out.size() - 4, kDeflateTail, 4) == 0) {
    out.erase(out.size() - 4);
  }
  return out;
}

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const uint8_t* const end = p + text.size();
  while (p < end) {
    // Most messages are ASCII JSON: skip eight bytes at a time while no high bit is set.
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if ((word & 0x8080808080808080ull) != 0) break;
      p += 8;
    }
    if (p == end) break;
    const uint8_t lead = *p;
    if (lead < 0x80) {
      ++p;
      continue;
    }
    // The second byte's range carries the special cases of RFC 3629's table: E0 and F0 forbid
    // overlongs, ED forbids surrogates, F4 stops at U+10FFFF.
    size_t continuation;
    uint8_t low = 0x80;
    uint8_t high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      continuation = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      continuation = 2;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      continuation = 3;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    } else {
      return false;  // A stray continuation byte, C0/C1 (always overlong), or F5 and above.
    }
    if (static_cast<size_t>(end - p) <= continuation) return false;
    if (p[1] < low || p[1] > high) return false;
    for (size_t i = 2; i <= continuation; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
    }
    p += continuation + 1;
  }
  return true;
}

// ---- Frames a client sends ----

// One compressed message's zlib stream. With client_no_context_takeover negotiated nothing
// carries over to the next message, so it lives only while a compressed message is read.
struct FrameReader::Inflater {
  Inflater() = default;
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  ~Inflater() {
    if (ready) inflateEnd(&z);
  }

  // Inflates `size` bytes onto `out`, which may not grow past `max`. 0 when fine, else the
  // close code: 1007 for data that is not deflate, 1009 over the limit. `tail`: the bytes are
  // the 00 00 ff ff put back at the end of the message.
  int Feed(const uint8_t* in, size_t size, bool tail, std::string& out, uint64_t max) {
    if (finished) return 0;  // Past a final block: see below.
    z.next_in = const_cast<Bytef*>(in);
    z.avail_in = static_cast<uInt>(size);
    for (;;) {
      // Never more than max + 1 bytes: one byte past the limit is enough to know it is crossed.
      const size_t old = out.size();
      const uint64_t left = max - old;
      const size_t room = left >= kChunkBytes ? kChunkBytes : static_cast<size_t>(left) + 1;
      out.resize(old + room);
      z.next_out = reinterpret_cast<Bytef*>(out.data() + old);
      z.avail_out = static_cast<uInt>(room);
      const int rc = inflate(&z, Z_SYNC_FLUSH);
      out.resize(old + room - z.avail_out);
      if (out.size() > max) return 1009;
      if (rc == Z_STREAM_END) {
        // A client may end the message with a final block (RFC 7692 section 7.2.3.4). Read
        // literally, section 7.2.1 then has it append an empty stored block and drop its last
        // four bytes, which leaves a 0x00 after the final block; DEFLATE stops at a final block,
        // so whatever follows it is ignored rather than refused.
        finished = true;
        return 0;
      }
      // Z_BUF_ERROR only says there was no input left to make progress with.
      if (rc != Z_OK && rc != Z_BUF_ERROR) return 1007;
      if (z.avail_out != 0) break;  // It stopped for want of input, not of room.
    }
    // With the tail put back, a message compressed as section 7.2.1 says ends between blocks;
    // one that does not was cut short, and what it inflated to would be a silent truncation.
    if (tail && (z.data_type & 128) == 0) return 1007;
    return 0;
  }

  z_stream z{};
  bool ready = false;
  bool finished = false;
};

FrameReader::FrameReader(uint64_t max_message_bytes, bool deflate)
    : max_message_bytes_(max_message_bytes), deflate_(deflate) {}

FrameReader::~FrameReader() = default;

FrameReader::Result FrameReader::Fail(int code, const char* reason) {
  error_code_ = code;
  error_reason_ = reason;
  inflater_.reset();
  // The connection is closing: give back what a half-read message held.
  message_ = std::string();
  control_ = std::string();
  return Result::kError;
}

FrameReader::Result FrameReader::Parse(const uint8_t* data, size_t size, size_t& used) {
  used = 0;
  if (error_code_ != 0) return Result::kError;
  // The last control payload was valid only until this call; an idle reader keeps no buffer.
  if (!in_frame_ && control_.capacity() > std::string().capacity()) control_ = std::string();
  size_t pos = 0;
  for (;;) {
    if (!in_frame_) {
      size_t header_bytes = 0;
      if (ReadHeader(data + pos, size - pos, header_bytes) == Result::kError) {
        used = pos;
        return Result::kError;
      }
      if (header_bytes == 0) {  // Incomplete: left for the next call, with more bytes.
        used = pos;
        return Result::kNeedMore;
      }
      pos += header_bytes;
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(frame_left_, size - pos));
    if (take > 0 && ReadPayload(data + pos, take) == Result::kError) {
      used = pos;
      return Result::kError;
    }
    pos += take;
    if (frame_left_ > 0) {  // Everything given was payload.
      used = pos;
      return Result::kNeedMore;
    }
    in_frame_ = false;
    const Result result = FinishFrame();
    if (result != Result::kNeedMore) {
      used = pos;
      return result;
    }
  }
}

FrameReader::Result FrameReader::ReadHeader(const uint8_t* data, size_t size,
                                            size_t& header_bytes) {
  header_bytes = 0;
  if (size < 2) return Result::kNeedMore;
  // The first two bytes already tell most broken frames apart; check them before waiting for
  // the rest of the header.
  const bool fin = (data[0] & 0x80) != 0;
  const bool rsv1 = (data[0] & 0x40) != 0;
  const uint8_t opcode = data[0] & 0x0F;
  const bool masked = (data[1] & 0x80) != 0;
  const uint8_t length7 = data[1] & 0x7F;
  if ((data[0] & 0x30) != 0) return Fail(1002, "protocol error");  // RSV2, RSV3: no extension.
  const bool control = (opcode & 0x08) != 0;
  switch (static_cast<Opcode>(opcode)) {
    case Opcode::kContinuation:
      if (!in_message_ || rsv1) return Fail(1002, "protocol error");
      break;
    case Opcode::kText:
    case Opcode::kBinary:
      if (in_message_ || (rsv1 && !deflate_)) return Fail(1002, "protocol error");
      break;
    case Opcode::kClose:
    case Opcode::kPing:
    case Opcode::kPong:
      if (!fin || rsv1 || length7 > kMaxControlPayloadBytes) return Fail(1002, "protocol error");
      break;
    default:
      return Fail(1002, "protocol error");  // Reserved opcodes.
  }
  if (!masked) return Fail(1002, "protocol error");  // RFC 6455 section 5.1.

  const size_t length_bytes = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
  if (size < 2 + length_bytes + 4) return Result::kNeedMore;
  uint64_t length = length7;
  if (length_bytes > 0) {
    length = 0;
    for (size_t i = 0; i < length_bytes; ++i) length = (length << 8) | data[2 + i];
    // Section 5.2: "the minimal number of bytes MUST be used", and the top bit MUST be 0.
    if (length_bytes == 2 && length < 126) return Fail(1002, "protocol error");
    if (length_bytes == 8 && (length < 65536 || (length >> 63) != 0)) {
      return Fail(1002, "protocol error");
    }
  }
  if (!control) {
    // Checked here, before any payload is buffered. For a compressed message the wire bytes are
    // bounded too: a stream of empty blocks inflates to nothing but must not go on forever.
    const uint64_t so_far = opcode == 0 ? message_wire_bytes_ : 0;
    if (length > max_message_bytes_ - so_far) return Fail(1009, "message too big");
  }
  std::memcpy(mask_, data + 2 + length_bytes, 4);
  header_bytes = 2 + length_bytes + 4;

  in_frame_ = true;
  fin_ = fin;
  opcode_ = opcode;
  frame_left_ = length;
  mask_offset_ = 0;
  if (control) {
    control_.clear();
  } else {
    if (opcode != 0) {
      in_message_ = true;
      binary_ = opcode == static_cast<uint8_t>(Opcode::kBinary);
      compressed_ = rsv1;
      message_wire_bytes_ = 0;
      message_.clear();
    }
    message_wire_bytes_ += length;
    if (compressed_ && inflater_ == nullptr) {
      auto inflater = std::make_unique<Inflater>();
      // 15: inflate reads any window the client used, whatever client_max_window_bits said.
      if (inflateInit2(&inflater->z, -15) != Z_OK) return Fail(1011, "out of memory");
      inflater->ready = true;
      inflater_ = std::move(inflater);
    }
  }
  return Result::kNeedMore;
}

FrameReader::Result FrameReader::ReadPayload(const uint8_t* data, size_t size) {
  const bool control = (opcode_ & 0x08) != 0;
  if (control) {
    AppendUnmasked(control_, data, size, mask_, mask_offset_);
  } else if (!compressed_) {
    AppendUnmasked(message_, data, size, mask_, mask_offset_);
  } else {
    // The compressed bytes go straight through zlib in slices: no copy of them is kept.
    uint8_t slice[kChunkBytes];
    size_t offset = mask_offset_;
    for (size_t done = 0; done < size;) {
      const size_t n = std::min(kChunkBytes, size - done);
      Unmask(data + done, n, mask_, offset, slice);
      const int code = inflater_->Feed(slice, n, /*tail=*/false, message_, max_message_bytes_);
      if (code == 1009) return Fail(1009, "message too big");
      if (code != 0) return Fail(1007, "invalid compressed data");
      done += n;
      offset += n;
    }
  }
  mask_offset_ = static_cast<uint8_t>((mask_offset_ + size) & 3);
  frame_left_ -= size;
  return Result::kNeedMore;
}

FrameReader::Result FrameReader::FinishFrame() {
  switch (static_cast<Opcode>(opcode_)) {
    case Opcode::kPing:
      return Result::kPing;
    case Opcode::kPong:
      return Result::kPong;
    case Opcode::kClose: {
      if (control_.empty()) {
        close_code_ = 1005;
        return Result::kClose;
      }
      if (control_.size() == 1) return Fail(1002, "protocol error");
      const int code = (static_cast<uint8_t>(control_[0]) << 8) | static_cast<uint8_t>(control_[1]);
      if (!IsSendableCloseCode(code)) return Fail(1002, "protocol error");
      const std::string_view reason = std::string_view(control_).substr(2);
      // 1002, not 1007: the reason is part of the close frame, which is a protocol element.
      if (!IsValidUtf8(reason)) return Fail(1002, "invalid close reason");
      close_code_ = code;
      return Result::kClose;
    }
    default:
      break;
  }
  if (!fin_) return Result::kNeedMore;  // More fragments to come.
  in_message_ = false;
  if (compressed_) {
    const int code = inflater_->Feed(kDeflateTail, sizeof(kDeflateTail), /*tail=*/true, message_,
                                     max_message_bytes_);
    inflater_.reset();  // No context takeover: an idle reader holds no zlib memory.
    if (code == 1009) return Fail(1009, "message too big");
    if (code != 0) return Fail(1007, "invalid compressed data");
  }
  if (!binary_ && !IsValidUtf8(message_)) return Fail(1007, "invalid utf-8");
  return Result::kMessage;
}

std::string FrameReader::TakeMessage() {
  std::string message = std::move(message_);
  message_ = std::string();
  message_wire_bytes_ = 0;
  compressed_ = false;
  return message;
}

}  // namespace fngate::gateway::ws
