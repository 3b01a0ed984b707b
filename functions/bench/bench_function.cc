// bench: the worker bench/run.sh and tests/load/fngate_load drive through the gateway.
//   connect  -> the first message the client gets is its own connection id (text), so a load
//               tool holding many connections learns the ids it later pushes to with the
//               control service (broadcast and push scenarios)
//   message  -> echoed back unchanged (text stays text, binary stays binary)
// Stateless, so any number of replicas can serve one gateway.
#include "absl/status/status.h"
#include "fngate/runtime/function.h"
#include "fngate/runtime/worker.h"

namespace {

using fngate::runtime::ConnectContext;
using fngate::runtime::MessageContext;

class BenchFunction final : public fngate::runtime::Function {
 public:
  absl::Status OnConnect(ConnectContext& ctx) override {
    // A connect reply's actions run once the connection is open: this Send is the client's
    // first frame, ahead of anything else the gateway writes to it.
    ctx.Reply(ctx.connection_id());
    return absl::OkStatus();
  }

  absl::Status OnMessage(MessageContext& ctx) override {
    ctx.Reply(ctx.payload());
    return absl::OkStatus();
  }
};

}  // namespace

int main(int argc, char** argv) {
  fngate::runtime::WorkerOptions options = fngate::runtime::InitWorker(argc, argv);
  BenchFunction bench;
  return fngate::runtime::RunWorker(bench, options);
}
