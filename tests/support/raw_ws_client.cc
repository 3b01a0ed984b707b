#include "tests/support/raw_ws_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/beast/zlib/deflate_stream.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace fngate::test_support {
namespace {

constexpr int kNoStatusReceived = 1005;

// Milliseconds left until `deadline`, for poll(): 0 once it passed.
int PollTimeout(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 60000));
}

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

std::string RawFrame::Build(uint8_t opcode, absl::string_view payload,
                            const FrameOptions& options) {
  std::string out;
  out.push_back(static_cast<char>((options.fin ? 0x80 : 0) | ((options.rsv & 0x7) << 4) |
                                  (opcode & 0x0F)));
  const uint8_t mask_bit = options.masked ? 0x80 : 0;
  const uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(mask_bit | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  }
  if (!options.masked) {
    out.append(payload.data(), payload.size());
    return out;
  }
  const char key[4] = {static_cast<char>(options.mask_key >> 24),
                       static_cast<char>(options.mask_key >> 16),
                       static_cast<char>(options.mask_key >> 8),
                       static_cast<char>(options.mask_key)};
  out.append(key, 4);
  for (size_t i = 0; i < payload.size(); ++i) out.push_back(payload[i] ^ key[i % 4]);
  return out;
}

std::string RawFrame::Deflate(absl::string_view data) {
  namespace zlib = boost::beast::zlib;
  zlib::deflate_stream stream;
  stream.reset(/*level=*/9, /*windowBits=*/15, /*memLevel=*/8, zlib::Strategy::normal);
  std::string out(stream.upper_bound(data.size()) + 16, '\0');
  zlib::z_params params;
  params.next_in = data.data();
  params.avail_in = data.size();
  params.next_out = out.data();
  params.avail_out = out.size();
  boost::system::error_code ec;
  stream.write(params, zlib::Flush::sync, ec);
  out.resize(params.total_out);
  if (out.size() >= 4 && out.compare(out.size() - 4, 4, std::string("\0\0\xff\xff", 4)) == 0) {
    out.resize(out.size() - 4);
  }
  return out;
}

std::string RawFrame::ClosePayload(int code, absl::string_view reason) {
  std::string out;
  out.push_back(static_cast<char>((code >> 8) & 0xFF));
  out.push_back(static_cast<char>(code & 0xFF));
  out.append(reason.data(), reason.size());
  return out;
}

int RawFrame::CloseCode() const {
  if (payload.size() < 2) return kNoStatusReceived;
  return (static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1]);
}

std::string HttpHead::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

RawWsClient::~RawWsClient() { Close(); }

void RawWsClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

absl::Status RawWsClient::Connect(absl::string_view host, int port, absl::Duration timeout,
                                  const RawConnectOptions& options) {
  Close();
  in_.clear();
  const absl::Time deadline = absl::Now() + timeout;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, std::string(host).c_str(), &address.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 address: ", host));
  }
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Errno("socket");
  if (options.receive_buffer_bytes > 0) {
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &options.receive_buffer_bytes,
                 sizeof(options.receive_buffer_bytes));
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 &&
      errno != EINPROGRESS) {
    return Errno("connect");
  }
  pollfd p{fd_, POLLOUT, 0};
  int ready;
  do {
    ready = ::poll(&p, 1, PollTimeout(deadline));
  } while (ready < 0 && errno == EINTR);
  if (ready == 0) return absl::DeadlineExceededError("TCP connect timed out");
  int error = 0;
  socklen_t length = sizeof(error);
  ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length);
  if (error != 0) {
    errno = error;
    return Errno("connect");
  }
  port_ = port;
  return absl::OkStatus();
}

absl::Status RawWsClient::Write(absl::string_view bytes, absl::Duration timeout) {
  if (fd_ < 0) return absl::FailedPreconditionError("not connected");
  const absl::Time deadline = absl::Now() + timeout;
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Errno("send");
    pollfd p{fd_, POLLOUT, 0};
    const int ready = ::poll(&p, 1, PollTimeout(deadline));
    if (ready == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("writing: ", sent, " of ", bytes.size(), " bytes sent in time"));
    }
  }
  return absl::OkStatus();
}

absl::Status RawWsClient::ReadSome(absl::Time deadline) {
  if (fd_ < 0) return absl::FailedPreconditionError("not connected");
  while (true) {
    char buffer[16384];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n > 0) {
      in_.append(buffer, static_cast<size_t>(n));
      return absl::OkStatus();
    }
    if (n == 0) return absl::UnavailableError("connection closed by the peer (EOF)");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Errno("recv");
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, PollTimeout(deadline));
    if (ready == 0) return absl::DeadlineExceededError("reading timed out");
  }
}

absl::Status RawWsClient::Fill(size_t size, absl::Time deadline) {
  while (in_.size() < size) {
    if (absl::Status s = ReadSome(deadline); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string RawWsClient::UpgradeRequest(absl::string_view target,
                                        const std::vector<std::string>& extra_headers) {
  std::string request = absl::StrCat("GET ", target,
                                     " HTTP/1.1\r\n"
                                     "Host: 127.0.0.1\r\n"
                                     "Upgrade: websocket\r\n"
                                     "Connection: Upgrade\r\n"
                                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                     "Sec-WebSocket-Version: 13\r\n");
  for (const std::string& header : extra_headers) absl::StrAppend(&request, header, "\r\n");
  absl::StrAppend(&request, "\r\n");
  return request;
}

absl::StatusOr<HttpHead> RawWsClient::Upgrade(absl::string_view target, absl::Duration timeout,
                                              const std::vector<std::string>& extra_headers) {
  const absl::Time deadline = absl::Now() + timeout;
  if (absl::Status s = Write(UpgradeRequest(target, extra_headers), timeout); !s.ok()) return s;
  return ReadHttpResponse(deadline - absl::Now());
}

absl::StatusOr<HttpHead> RawWsClient::ReadHttpResponse(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  size_t end;
  while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
    if (absl::Status s = ReadSome(deadline); !s.ok()) return s;
  }
  const std::string head = in_.substr(0, end);
  in_.erase(0, end + 4);
  std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
  std::vector<std::string> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  HttpHead result;
  if (status_line.size() < 2 || !absl::StartsWith(status_line[0], "HTTP/1.") ||
      !absl::SimpleAtoi(status_line[1], &result.status)) {
    return absl::InvalidArgumentError(absl::StrCat("not an HTTP status line: '", lines[0], "'"));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    result.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  size_t length = 0;
  if (result.status != 101 && absl::SimpleAtoi(result.Header("content-length"), &length)) {
    if (absl::Status s = Fill(length, deadline); !s.ok()) return s;
    result.body = in_.substr(0, length);
    in_.erase(0, length);
  }
  return result;
}

absl::StatusOr<RawFrame> RawWsClient::ReadFrame(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  if (absl::Status s = Fill(2, deadline); !s.ok()) return s;
  RawFrame frame;
  const uint8_t b0 = static_cast<uint8_t>(in_[0]);
  const uint8_t b1 = static_cast<uint8_t>(in_[1]);
  frame.fin = (b0 & 0x80) != 0;
  frame.rsv = (b0 >> 4) & 0x7;
  frame.opcode = b0 & 0x0F;
  frame.masked = (b1 & 0x80) != 0;
  size_t header = 2;
  uint64_t length = b1 & 0x7F;
  if (length >= 126) {
    const size_t extra = length == 126 ? 2 : 8;
    if (absl::Status s = Fill(2 + extra, deadline); !s.ok()) return s;
    length = 0;
    for (size_t i = 0; i < extra; ++i) length = (length << 8) | static_cast<uint8_t>(in_[2 + i]);
    header += extra;
  }
  char key[4] = {0, 0, 0, 0};
  if (frame.masked) {
    if (absl::Status s = Fill(header + 4, deadline); !s.ok()) return s;
    std::memcpy(key, in_.data() + header, 4);
    header += 4;
  }
  if (length > (64u << 20)) return absl::InvalidArgumentError("frame over 64 MiB");
  if (absl::Status s = Fill(header + length, deadline); !s.ok()) return s;
  frame.payload = in_.substr(header, length);
  if (frame.masked) {
    for (size_t i = 0; i < frame.payload.size(); ++i) frame.payload[i] ^= key[i % 4];
  }
  in_.erase(0, header + length);
  return frame;
}

absl::StatusOr<RawFrame> RawWsClient::ReadCloseFrame(absl::Duration timeout, bool answer_pings) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<RawFrame> frame = ReadFrame(deadline - absl::Now());
    if (!frame.ok() || frame->IsClose()) return frame;
    if (answer_pings && frame->opcode == static_cast<uint8_t>(WsOpcode::kPing)) {
      absl::Status s = Write(RawFrame::Build(WsOpcode::kPong, frame->payload), deadline - absl::Now());
      if (!s.ok()) return s;
      continue;
    }
    ++skipped_frames_;
  }
}

absl::Status RawWsClient::WaitForEof(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    in_.clear();
    absl::Status s = ReadSome(deadline);
    if (absl::IsUnavailable(s)) {  // EOF or reset: the server is done.
      Close();
      return absl::OkStatus();
    }
    if (!s.ok()) return s;
  }
}

}  // namespace fngate::test_support
