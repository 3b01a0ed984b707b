#include "common/process.h"

#include <csignal>

#include "absl/synchronization/mutex.h"

namespace fngate {

void PrepareServerProcess() {
  std::signal(SIGPIPE, SIG_IGN);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace fngate
