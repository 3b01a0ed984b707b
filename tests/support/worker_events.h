// File: tests/support/worker_events.h
// Reading a worker's `--log_events` lines (the runtime's contract, one per event received):
//   EVENT kind=connect conn=<id> request=<rid>
//   EVENT kind=message conn=<id> request=<rid> seq=<n>
//   EVENT kind=disconnect conn=<id> request=<rid> code=<close_code> by=<CLIENT|...>
//   EVENT kind=error conn=<id> request=<rid> failed=<connect|message|disconnect> code=<n>
// Only lines that start with "EVENT " count. Pure functions: thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace fngate::test_support {

struct WorkerEvent {
  std::string kind;  // connect, message, disconnect, error
  std::string conn;  // connection id
  std::map<std::string, std::string> fields;  // Every key=value of the line, kind and conn too.
  std::string line;  // The whole line.

  // The value of `key`, or "" if the line has none.
  std::string Field(const std::string& key) const;
};

// Every EVENT line of `output`, in order. Lines that are not well formed are skipped.
std::vector<WorkerEvent> ParseWorkerEvents(absl::string_view output);

// The events of `kind` for connection `conn` ("" matches any), in order.
std::vector<WorkerEvent> FilterWorkerEvents(const std::vector<WorkerEvent>& events,
                                            absl::string_view kind, absl::string_view conn = "");

// How many EVENT lines of `kind` (and connection `conn`, unless "") `output` holds. Cheap: no
// allocation, suitable inside Subprocess::WaitForOutput predicates over large outputs.
int CountWorkerEvents(absl::string_view output, absl::string_view kind, absl::string_view conn = "");

}  // namespace fngate::test_support
