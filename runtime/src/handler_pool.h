// File: runtime/src/handler_pool.h
// HandlerPool: a fixed set of threads that run user handlers for batched event streams, so a
// handler may block without holding up gRPC's own threads.
//
// The queue needs no bound of its own: each Events stream has at most one batch queued or
// running (it reads the next one only after), so the queue is at most the number of open
// streams. Thread-safe. The destructor runs what is queued, then joins.
#pragma once

#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace fngate::runtime {

class HandlerPool {
 public:
  explicit HandlerPool(int threads);
  ~HandlerPool();
  HandlerPool(const HandlerPool&) = delete;
  HandlerPool& operator=(const HandlerPool&) = delete;

  void Run(absl::AnyInvocable<void()> task) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace fngate::runtime
