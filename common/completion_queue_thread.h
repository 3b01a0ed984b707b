// File: common/completion_queue_thread.h
// CompletionQueueThread: one grpc::CompletionQueue and the one thread that takes its
// completions, for calls on gRPC's completion-queue API.
//
// Why not the callback API: in gRPC 1.51 on Linux, callbacks run on two "nexting" threads per
// process that take turns polling one shared epoll set, and every event wakes the one whose
// turn is next. One thread that polls its own queue and runs what completes wakes once per
// event. On one core that halves the wake-ups of each event (see docs/benchmarks.md).
//
// Every tag put on the queue must point to a CompletionQueueThread::Tag; the thread calls its
// OnComplete(ok) and nothing else. The destructor shuts the queue down, runs what is still
// queued, and joins: the owners of the calls must have ended them before (their tags run).
#pragma once

#include <memory>
#include <thread>

#include <grpcpp/completion_queue.h>

namespace fngate {

class CompletionQueueThread {
 public:
  class Tag {
   public:
    virtual void OnComplete(bool ok) = 0;

   protected:
    ~Tag() = default;
  };

  // `cq`: a server's queue (ServerBuilder::AddCompletionQueue) when a server's calls complete
  // there too; it may be polled before the server starts.
  explicit CompletionQueueThread(
      std::unique_ptr<grpc::CompletionQueue> cq = std::make_unique<grpc::CompletionQueue>())
      : cq_(std::move(cq)), thread_([q = cq_.get()] {
          void* tag = nullptr;
          bool ok = false;
          while (q->Next(&tag, &ok)) static_cast<Tag*>(tag)->OnComplete(ok);
        }) {}
  ~CompletionQueueThread() {
    cq_->Shutdown();
    thread_.join();
  }
  CompletionQueueThread(const CompletionQueueThread&) = delete;
  CompletionQueueThread& operator=(const CompletionQueueThread&) = delete;

  grpc::CompletionQueue* cq() { return cq_.get(); }

 private:
  std::unique_ptr<grpc::CompletionQueue> cq_;
  std::thread thread_;  // After cq_: it starts once the queue exists.
};

}  // namespace fngate
