// tests/fuzz/config_fuzz.cc
// The config loader (gateway/config.h) on arbitrary text: leading lines of the form
// `--name=value` are applied as flags, the rest is the YAML/JSON config file, exactly the order
// LoadSettings() uses (file first, then flags). Besides "no crash, no UB, no escaped
// exception", it checks that a file error names the file and line, that a flag error names the
// flag, and that settings which pass validation keep the invariants the gateway relies on.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/config.h"
#include "tests/fuzz/fuzz_check.h"

namespace fngate::gateway {
namespace {

constexpr char kFile[] = "fuzz.yaml";

void Check(std::string_view input) {
  // Split off the leading flag lines.
  std::vector<std::pair<std::string, std::string>> flags;
  while (input.substr(0, 2) == "--") {
    const size_t end = input.find('\n');
    const std::string_view line = input.substr(2, end == std::string_view::npos ? end : end - 2);
    const size_t eq = line.find('=');
    flags.emplace_back(std::string(line.substr(0, eq)),
                       eq == std::string_view::npos ? "true" : std::string(line.substr(eq + 1)));
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
  }

  config::v1::GatewayConfig config;
  ConfigOrigins origins;
  const absl::Status merged = MergeConfigText(std::string(input), std::string(kFile), config, origins);
  if (!merged.ok()) {
    FUZZ_CHECK(merged.code() == absl::StatusCode::kInvalidArgument) << merged;
    FUZZ_CHECK(absl::StartsWith(merged.message(), absl::StrCat(kFile, ":"))) << merged;
    return;
  }
  for (const auto& [name, value] : flags) {
    const absl::Status applied = ApplyFlag(name, value, config, origins);
    if (!applied.ok()) {
      FUZZ_CHECK(applied.code() == absl::StatusCode::kInvalidArgument) << applied;
      FUZZ_CHECK(absl::StrContains(applied.message(), "flag --")) << applied;
      return;
    }
  }
  const absl::StatusOr<GatewaySettings> settings = ToSettings(config, origins);
  if (!settings.ok()) {
    FUZZ_CHECK(settings.status().code() == absl::StatusCode::kInvalidArgument)
        << settings.status();
    FUZZ_CHECK(!settings.status().message().empty());
    return;
  }
  FUZZ_CHECK(!settings->functions.empty());
  for (const FunctionSettings& f : settings->functions) {
    FUZZ_CHECK(!f.name.empty() && f.name.size() <= 64) << f.name;
    FUZZ_CHECK(!f.target.empty()) << f.name;
    FUZZ_CHECK(f.max_in_flight >= 1 && f.max_in_flight <= 1024) << f.name;
  }
  FUZZ_CHECK(settings->io_threads >= 1 && settings->io_threads <= 256);
  FUZZ_CHECK(settings->limits.max_outbound_bytes >= settings->limits.max_message_bytes);
}

}  // namespace
}  // namespace fngate::gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fngate::gateway::Check(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
