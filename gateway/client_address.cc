#include "gateway/client_address.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fngate::gateway {
namespace {

constexpr uint8_t kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool Trusted(const std::vector<IpNetwork>& trusted, const IpAddress& address) {
  for (const IpNetwork& network : trusted) {
    if (network.Contains(address)) return true;
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// One X-Forwarded-For entry: an address, maybe bracketed, maybe with a port.
std::optional<IpAddress> ParseForwardedEntry(std::string_view entry) {
  if (!entry.empty() && entry.front() == '[') {
    const size_t close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    return ParseIpAddress(entry.substr(1, close - 1));
  }
  if (const size_t colon = entry.find(':');
      colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos) {
    return ParseIpAddress(entry.substr(0, colon));  // "1.2.3.4:80"; IPv6 has several colons.
  }
  return ParseIpAddress(entry);
}

}  // namespace

std::optional<IpAddress> ParseIpAddress(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string copy(text);  // inet_pton wants a terminated string.
  IpAddress ip;
  if (inet_pton(AF_INET, copy.c_str(), ip.bytes.data()) == 1) {
    ip.v4 = true;
    return ip;
  }
  if (inet_pton(AF_INET6, copy.c_str(), ip.bytes.data()) != 1) return std::nullopt;
  if (std::memcmp(ip.bytes.data(), kV4Mapped, sizeof(kV4Mapped)) == 0) {
    IpAddress v4;
    std::memcpy(v4.bytes.data(), ip.bytes.data() + 12, 4);
    v4.v4 = true;
    return v4;
  }
  return ip;
}

bool IsLoopback(const IpAddress& address) {
  if (address.v4) return address.bytes[0] == 127;
  static constexpr std::array<uint8_t, 16> kLoopback6 = {0, 0, 0, 0, 0, 0, 0, 0,
                                                         0, 0, 0, 0, 0, 0, 0, 1};
  return address.bytes == kLoopback6;
}

bool IpNetwork::Contains(const IpAddress& address) const {
  if (address.v4 != base.v4) return false;
  const int whole = prefix_bits / 8;
  if (std::memcmp(address.bytes.data(), base.bytes.data(), whole) != 0) return false;
  const int rest = prefix_bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (address.bytes[whole] & mask) == (base.bytes[whole] & mask);
}

std::string ToString(const IpAddress& address) {
  char text[INET6_ADDRSTRLEN] = "";
  inet_ntop(address.v4 ? AF_INET : AF_INET6, address.bytes.data(), text, sizeof(text));
  return text;
}

std::optional<std::string> ForwardedClient(std::string_view peer_ip,
                                           std::string_view forwarded_for,
                                           const std::vector<IpNetwork>& trusted) {
  const std::optional<IpAddress> peer = ParseIpAddress(peer_ip);
  if (!peer || !Trusted(trusted, *peer)) return std::nullopt;
  // Right to left: each trusted hop vouches for the entry left of it.
  std::optional<IpAddress> vouched;  // The last trusted entry seen.
  while (!forwarded_for.empty()) {
    const size_t comma = forwarded_for.rfind(',');
    const std::string_view entry =
        Trim(comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1));
    forwarded_for = comma == std::string_view::npos ? std::string_view()
                                                     : forwarded_for.substr(0, comma);
    if (entry.empty()) continue;
    const std::optional<IpAddress> ip = ParseForwardedEntry(entry);
    if (!ip) break;
    if (!Trusted(trusted, *ip)) return ToString(*ip);
    vouched = ip;
  }
  if (vouched) return ToString(*vouched);
  return std::nullopt;
}

absl::StatusOr<IpNetwork> ParseIpNetwork(std::string_view text_in) {
  const absl::string_view text(text_in.data(), text_in.size());
  const size_t slash = text.find('/');
  std::optional<IpAddress> base = ParseIpAddress(text_in.substr(0, slash));
  if (!base) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not an IP address or CIDR block (\"10.0.0.0/8\")"));
  }
  const int max_bits = base->v4 ? 32 : 128;
  IpNetwork network{*base, max_bits};
  if (slash != std::string_view::npos) {
    if (!absl::SimpleAtoi(text.substr(slash + 1), &network.prefix_bits) ||
        network.prefix_bits < 0 || network.prefix_bits > max_bits) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "': the prefix length must be 0-", max_bits));
    }
  }
  for (int bit = network.prefix_bits; bit < max_bits; ++bit) {
    if (network.base.bytes[bit / 8] & (0x80 >> (bit % 8))) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "': address bits are set past the /", network.prefix_bits,
                       " prefix"));
    }
  }
  return network;
}

}  // namespace fngate::gateway
