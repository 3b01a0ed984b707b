#include "gateway/ctl/ctl_output.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"

namespace fngate::ctl {
namespace {

std::string OrDash(const std::string& value) { return value.empty() ? "-" : value; }

std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp) {
  if (timestamp.seconds() == 0 && timestamp.nanos() == 0) return "-";
  absl::Time time =
      absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

// "k1=v1 k2=v2", sorted by key (a protobuf map has no order).
std::string FormatMap(const google::protobuf::Map<std::string, std::string>& map) {
  std::map<std::string, std::string> sorted(map.begin(), map.end());
  return OrDash(absl::StrJoin(sorted, " ", absl::PairFormatter("=")));
}

}  // namespace

std::string Summary(const std::string& verb, int count, const IdList& gone,
                    const IdList& overflowed) {
  std::string line = absl::StrCat(verb, " ", count);
  if (!gone.empty()) absl::StrAppend(&line, ", gone: ", absl::StrJoin(gone, " "));
  if (!overflowed.empty()) absl::StrAppend(&line, ", overflowed: ", absl::StrJoin(overflowed, " "));
  return line;
}

std::string DescribeConnection(const v1::ConnectionInfo& info) {
  const v1::ConnectionContext& c = info.connection();
  const std::vector<std::pair<std::string, std::string>> lines = {
      {"connection", OrDash(c.connection_id())},
      {"function", OrDash(c.function())},
      {"path", OrDash(c.path())},
      {"query", FormatMap(c.query())},
      {"user", OrDash(c.user_id())},
      {"app", OrDash(c.app_id())},
      {"channel", OrDash(c.channel())},
      {"device", OrDash(c.device_id())},
      {"groups", OrDash(absl::StrJoin(c.groups(), " "))},
      {"metadata", FormatMap(c.metadata())},
      {"client", OrDash(c.client_address())},
      {"subprotocol", OrDash(c.subprotocol())},
      {"user agent", OrDash(info.user_agent())},
      {"connected", FormatTimestamp(c.connected_at())},
      {"last active", FormatTimestamp(info.last_activity())},
      {"messages", absl::StrCat(info.messages_in(), " in, ", info.messages_out(), " out")},
      {"bytes", absl::StrCat(info.bytes_in(), " in, ", info.bytes_out(), " out")},
      {"gateway", OrDash(c.gateway())},
  };
  std::string text;
  for (const auto& [label, value] : lines) {
    absl::StrAppend(&text, label, std::string(13 - label.size(), ' '), value, "\n");
  }
  return text;
}

std::string ConnectionTable(const std::vector<v1::ConnectionInfo>& rows) {
  std::vector<std::vector<std::string>> cells = {{"CONNECTION", "FUNCTION", "USER", "APP",
                                                  "CHANNEL", "GROUPS", "CLIENT", "CONNECTED", "IN",
                                                  "OUT"}};
  for (const v1::ConnectionInfo& info : rows) {
    const v1::ConnectionContext& c = info.connection();
    cells.push_back({OrDash(c.connection_id()), OrDash(c.function()), OrDash(c.user_id()),
                     OrDash(c.app_id()), OrDash(c.channel()),
                     OrDash(absl::StrJoin(c.groups(), ",")), OrDash(c.client_address()),
                     FormatTimestamp(c.connected_at()), absl::StrCat(info.messages_in()),
                     absl::StrCat(info.messages_out())});
  }
  std::vector<size_t> widths(cells.front().size(), 0);
  for (const std::vector<std::string>& row : cells) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string text;
  for (const std::vector<std::string>& row : cells) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i], std::string(widths[i] - row[i].size() + 2, ' '));
    }
    absl::StrAppend(&text, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  return text;
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  google::protobuf::util::Status status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot print the answer as JSON: ", std::string(status.message())));
  }
  return json;
}

}  // namespace fngate::ctl
