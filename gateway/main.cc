// fngate: the gateway binary. Reads flags and config, binds every port, prints the READY
// line, serves until SIGTERM/SIGINT has drained. Exit codes: 0 after a clean stop, 2 for bad
// flags or config, 1 when a port cannot be bound.
#include <cstdio>
#include <iostream>

#include "common/log.h"
#include "common/process.h"
#include "common/ready_line.h"
#include "gateway/config.h"
#include "gateway/gateway.h"

int main(int argc, char** argv) {
  absl::StatusOr<fngate::gateway::GatewaySettings> settings =
      fngate::gateway::LoadSettings(argc, argv);
  if (!settings.ok()) {
    if (settings.status().code() == absl::StatusCode::kFailedPrecondition) {  // --help
      std::cout << settings.status().message();
      return 0;
    }
    std::cerr << "fngate: " << settings.status().message() << "\n";
    return 2;
  }
  fngate::log::SetLevel(*fngate::log::ParseLevel(settings->log_level));
  fngate::PrepareServerProcess();

  absl::StatusOr<std::unique_ptr<fngate::gateway::Gateway>> gateway =
      fngate::gateway::Gateway::Create(*std::move(settings));
  if (!gateway.ok()) {
    std::cerr << "fngate: " << gateway.status().message() << "\n";
    return 1;
  }
  fngate::PrintReadyLine({{"ws", (*gateway)->ws_port()},
                          {"control", (*gateway)->control_port()},
                          {"admin", (*gateway)->admin_port()}});
  (*gateway)->Run();
  return 0;
}
