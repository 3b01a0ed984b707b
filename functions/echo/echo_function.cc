// echo: answers every message with the same payload (text stays text, binary stays binary).
//   connect with ?deny=1     -> refused with HTTP 403 "denied"
//   connect with ?user=NAME  -> the connection is bound to user NAME, with metadata via=echo
//   text message "whoami"    -> replies "user=<bound user> via=<metadata via>", as the message
//                               event carried them
//   text message "close"     -> the connection is closed with 1000 "bye"
//   text message "fail"      -> a function error (INTERNAL): the gateway fires OnError and
//                               closes the client with 1011
//   text message "push"      -> pushes "pushed" to this connection through the gateway's
//                               control service (ctx.Gateway(), with the worker's --gateway_*
//                               credentials), then replies "push: OK" or "push: <error>"
// Stateless, so any number of replicas can serve one gateway.
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "fngate/runtime/function.h"
#include "fngate/runtime/worker.h"

namespace {

using fngate::runtime::ConnectContext;
using fngate::runtime::MessageContext;

class EchoFunction final : public fngate::runtime::Function {
 public:
  absl::Status OnConnect(ConnectContext& ctx) override {
    if (ctx.QueryParam("deny") == "1") ctx.Reject(403, "denied");
    if (std::string user = ctx.QueryParam("user"); !user.empty()) {
      ctx.BindUser(std::move(user));
      ctx.SetMetadata("via", "echo");
    }
    return absl::OkStatus();
  }

  absl::Status OnMessage(MessageContext& ctx) override {
    if (ctx.is_text() && ctx.data() == "close") {
      ctx.Close(1000, "bye");
    } else if (ctx.is_text() && ctx.data() == "whoami") {
      ctx.Reply(absl::StrCat("user=", ctx.user_id(), " via=", ctx.MetadataValue("via")));
    } else if (ctx.is_text() && ctx.data() == "fail") {
      return absl::InternalError("echo: asked to fail");
    } else if (ctx.is_text() && ctx.data() == "push") {
      absl::StatusOr<fngate::runtime::SendResult> pushed = ctx.Gateway().Send(
          fngate::runtime::To::Connection(ctx.connection_id()),
          fngate::runtime::Payload::Text("pushed"));
      ctx.Reply(absl::StrCat("push: ", pushed.ok() ? "OK" : pushed.status().ToString()));
    } else {
      ctx.Reply(ctx.payload());
    }
    return absl::OkStatus();
  }
};

}  // namespace

int main(int argc, char** argv) {
  fngate::runtime::WorkerOptions options = fngate::runtime::InitWorker(argc, argv);
  EchoFunction echo;
  return fngate::runtime::RunWorker(echo, options);
}
