// chat: rooms chosen by the `room` query parameter (default "lobby"). Every message goes, as
// one batch Send, to every member of the sender's room, sender included, exactly as it came.
// Members are kept in this worker's memory: run one replica per gateway (a shared room table
// is the addressing issue's groups).
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "fngate/runtime/function.h"
#include "fngate/runtime/worker.h"

namespace {

using fngate::runtime::ConnectContext;
using fngate::runtime::Context;
using fngate::runtime::DisconnectContext;
using fngate::runtime::MessageContext;
using fngate::runtime::To;

class ChatFunction final : public fngate::runtime::Function {
 public:
  absl::Status OnConnect(ConnectContext& ctx) override {
    absl::MutexLock lock(&mutex_);
    rooms_[RoomOf(ctx)].insert(ctx.connection_id());
    return absl::OkStatus();
  }

  absl::Status OnMessage(MessageContext& ctx) override {
    std::vector<std::string> members;
    {
      absl::MutexLock lock(&mutex_);
      std::set<std::string>& room = rooms_[RoomOf(ctx)];
      // A sender is a member even if this worker missed its connect (it restarted meanwhile).
      room.insert(ctx.connection_id());
      members.assign(room.begin(), room.end());
    }
    ctx.Send(To::Connections(std::move(members)), ctx.payload());
    return absl::OkStatus();
  }

  absl::Status OnDisconnect(DisconnectContext& ctx) override {
    absl::MutexLock lock(&mutex_);
    auto room = rooms_.find(RoomOf(ctx));
    if (room != rooms_.end()) {
      room->second.erase(ctx.connection_id());
      if (room->second.empty()) rooms_.erase(room);
    }
    return absl::OkStatus();
  }

 private:
  // Every event carries the connection's query, so the room needs no table of its own.
  static std::string RoomOf(const Context& ctx) {
    std::string room = ctx.QueryParam("room");
    return room.empty() ? "lobby" : room;
  }

  // Handlers of different connections run concurrently.
  absl::Mutex mutex_;
  std::map<std::string, std::set<std::string>> rooms_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace

int main(int argc, char** argv) {
  fngate::runtime::WorkerOptions options = fngate::runtime::InitWorker(argc, argv);
  ChatFunction chat;
  return fngate::runtime::RunWorker(chat, options);
}
