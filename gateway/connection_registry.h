// File: gateway/connection_registry.h
// The online table's index: connection id -> session, for the control service and for reply
// actions that target other connections. Holds weak_ptrs: a session's lifetime is its
// pending work (Beast's rule), never the table's.
//
// Thread-safe. Sharded by id hash so that control calls and sessions coming and going on
// different threads rarely meet on one mutex; nothing on a connection's own message path
// touches it.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace fngate::gateway {

class Session;

class ConnectionRegistry {
 public:
  void Add(const std::string& id, std::weak_ptr<Session> session);
  void Remove(const std::string& id);
  // Null when the id is unknown or its session is gone.
  std::shared_ptr<Session> Find(std::string_view id) const;
  // Every live session, for shutdown.
  std::vector<std::shared_ptr<Session>> Snapshot() const;
  size_t size() const;

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, std::weak_ptr<Session>> sessions ABSL_GUARDED_BY(mu);
  };
  Shard& ShardFor(std::string_view id) const;

  mutable std::array<Shard, kShards> shards_;
};

}  // namespace fngate::gateway
