#include "gateway/identity.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fngate::gateway {
namespace {

constexpr size_t kMaxIdentityBytes = 256;
constexpr int kMaxMetadataEntries = 64;
constexpr size_t kMaxMetadataValueBytes = 4096;

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

}  // namespace

absl::Status ValidateIdentity(const v1::Identity& identity) {
  if (!identity.has_user_id() && !identity.has_app_id() && !identity.has_channel() &&
      !identity.has_device_id() && identity.metadata().empty()) {
    return Invalid("identity", "nothing to change: set user_id, app_id, channel, device_id "
                               "or metadata");
  }
  for (const auto& [name, value] :
       {std::pair{"identity.user_id", &identity.user_id()},
        std::pair{"identity.app_id", &identity.app_id()},
        std::pair{"identity.channel", &identity.channel()},
        std::pair{"identity.device_id", &identity.device_id()}}) {
    if (value->size() > kMaxIdentityBytes) {
      return Invalid(name, absl::StrCat("at most ", kMaxIdentityBytes, " bytes"));
    }
  }
  if (identity.metadata_size() > kMaxMetadataEntries) {
    return Invalid("identity.metadata", absl::StrCat("at most ", kMaxMetadataEntries,
                                                     " entries"));
  }
  for (const auto& [key, value] : identity.metadata()) {
    if (key.empty() || key.size() > kMaxIdentityBytes) {
      return Invalid("identity.metadata", "keys are 1-256 bytes");
    }
    if (value.size() > kMaxMetadataValueBytes) {
      return Invalid(absl::StrCat("identity.metadata[", key, "]"), "at most 4096 bytes");
    }
  }
  return absl::OkStatus();
}

bool JoinGroups(const Strings& groups, v1::ConnectionContext& context) {
  Strings& mine = *context.mutable_groups();
  bool changed = false;
  for (const std::string& group : groups) {
    auto at = std::lower_bound(mine.begin(), mine.end(), group);
    if (at != mine.end() && *at == group) continue;
    // RepeatedPtrField has no insert: append, then rotate into place.
    const int index = static_cast<int>(at - mine.begin());
    mine.Add(std::string(group));
    std::rotate(mine.begin() + index, mine.end() - 1, mine.end());
    changed = true;
  }
  return changed;
}

bool LeaveGroups(const Strings& groups, v1::ConnectionContext& context) {
  Strings& mine = *context.mutable_groups();
  const int before = mine.size();
  auto end = std::remove_if(mine.begin(), mine.end(), [&groups](const std::string& g) {
    return std::find(groups.begin(), groups.end(), g) != groups.end();
  });
  mine.DeleteSubrange(static_cast<int>(end - mine.begin()),
                      static_cast<int>(mine.end() - end));
  return mine.size() != before;
}

bool ApplyIdentity(const v1::Identity& identity, v1::ConnectionContext& context) {
  bool changed = false;
  auto set = [&changed](bool has, const std::string& value, std::string* field) {
    if (!has || *field == value) return;
    *field = value;
    changed = true;
  };
  set(identity.has_user_id(), identity.user_id(), context.mutable_user_id());
  set(identity.has_app_id(), identity.app_id(), context.mutable_app_id());
  set(identity.has_channel(), identity.channel(), context.mutable_channel());
  set(identity.has_device_id(), identity.device_id(), context.mutable_device_id());
  auto& metadata = *context.mutable_metadata();
  for (const auto& [key, value] : identity.metadata()) {
    if (value.empty()) {
      changed |= metadata.erase(key) > 0;
    } else if (auto it = metadata.find(key); it == metadata.end() || it->second != value) {
      metadata[key] = value;
      changed = true;
    }
  }
  return changed;
}

}  // namespace fngate::gateway
