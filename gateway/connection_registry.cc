#include "gateway/connection_registry.h"

#include "absl/hash/hash.h"

namespace fngate::gateway {

ConnectionRegistry::Shard& ConnectionRegistry::ShardFor(std::string_view id) const {
  return shards_[absl::HashOf(id) % kShards];
}

void ConnectionRegistry::Add(const std::string& id, std::weak_ptr<Session> session) {
  Shard& shard = ShardFor(id);
  absl::MutexLock lock(&shard.mu);
  shard.sessions.insert_or_assign(id, std::move(session));
}

void ConnectionRegistry::Remove(const std::string& id) {
  Shard& shard = ShardFor(id);
  absl::MutexLock lock(&shard.mu);
  shard.sessions.erase(id);
}

std::shared_ptr<Session> ConnectionRegistry::Find(std::string_view id) const {
  Shard& shard = ShardFor(id);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.sessions.find(absl::string_view(id.data(), id.size()));
  return it == shard.sessions.end() ? nullptr : it->second.lock();
}

std::vector<std::shared_ptr<Session>> ConnectionRegistry::Snapshot() const {
  std::vector<std::shared_ptr<Session>> out;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (const auto& [id, weak] : shard.sessions) {
      if (std::shared_ptr<Session> s = weak.lock()) out.push_back(std::move(s));
    }
  }
  return out;
}

size_t ConnectionRegistry::size() const {
  size_t n = 0;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    n += shard.sessions.size();
  }
  return n;
}

}  // namespace fngate::gateway
