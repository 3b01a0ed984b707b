// fngatectl: the command-line client of the gateway's control service (fngate.v1.GatewayControl).
// `fngatectl --help` lists the commands; exit codes: 0 done, 1 the call failed, 2 bad usage.
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "gateway/ctl/ctl_run.h"

namespace {

std::optional<std::string> GetEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  fngate::ctl::Environment env;
  env.control = GetEnv("FNGATE_CONTROL");
  env.token = GetEnv("FNGATE_TOKEN");
  return fngate::ctl::RunFngatectl(args, env, std::cout, std::cerr);
}
