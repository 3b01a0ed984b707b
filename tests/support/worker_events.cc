#include "tests/support/worker_events.h"

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace fngate::test_support {
namespace {

constexpr absl::string_view kPrefix = "EVENT ";

// Calls `fn(line)` for every line of `text` (without the newline).
template <typename Fn>
void ForEachLine(absl::string_view text, Fn&& fn) {
  while (!text.empty()) {
    size_t end = text.find('\n');
    absl::string_view line = text.substr(0, end);
    fn(line);
    if (end == absl::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

// True if `line` holds the word `key=value`: after a space, followed by a space or the end.
bool HasWord(absl::string_view line, absl::string_view key, absl::string_view value) {
  size_t pos = 0;
  while ((pos = line.find(key, pos)) != absl::string_view::npos) {
    bool starts_word = pos > 0 && line[pos - 1] == ' ';
    size_t after_key = pos + key.size();
    if (starts_word && after_key < line.size() && line[after_key] == '=' &&
        line.substr(after_key + 1, value.size()) == value) {
      size_t end = after_key + 1 + value.size();
      if (end == line.size() || line[end] == ' ' || line[end] == '\r') return true;
    }
    pos = after_key;
  }
  return false;
}

}  // namespace

std::string WorkerEvent::Field(const std::string& key) const {
  auto it = fields.find(key);
  return it == fields.end() ? "" : it->second;
}

std::vector<WorkerEvent> ParseWorkerEvents(absl::string_view output) {
  std::vector<WorkerEvent> events;
  ForEachLine(output, [&events](absl::string_view line) {
    if (!absl::StartsWith(line, kPrefix)) return;
    WorkerEvent event;
    event.line = std::string(line);
    for (absl::string_view word : absl::StrSplit(line.substr(kPrefix.size()), ' ', absl::SkipEmpty())) {
      size_t eq = word.find('=');
      if (eq == absl::string_view::npos || eq == 0) continue;
      event.fields[std::string(word.substr(0, eq))] = std::string(word.substr(eq + 1));
    }
    event.kind = event.Field("kind");
    event.conn = event.Field("conn");
    if (event.kind.empty()) return;
    events.push_back(std::move(event));
  });
  return events;
}

std::vector<WorkerEvent> FilterWorkerEvents(const std::vector<WorkerEvent>& events,
                                            absl::string_view kind, absl::string_view conn) {
  std::vector<WorkerEvent> matching;
  for (const WorkerEvent& event : events) {
    if (event.kind == kind && (conn.empty() || event.conn == conn)) matching.push_back(event);
  }
  return matching;
}

int CountWorkerEvents(absl::string_view output, absl::string_view kind, absl::string_view conn) {
  int count = 0;
  ForEachLine(output, [&](absl::string_view line) {
    if (!absl::StartsWith(line, kPrefix)) return;
    if (!HasWord(line, "kind", kind)) return;
    if (!conn.empty() && !HasWord(line, "conn", conn)) return;
    ++count;
  });
  return count;
}

}  // namespace fngate::test_support
