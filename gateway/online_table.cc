#include "gateway/online_table.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "gateway/session.h"

namespace fngate::gateway {

bool IsEmptyTarget(const v1::Target& target) {
  return target.connection_ids().empty() && target.user_ids().empty() &&
         target.groups().empty() && !target.all();
}

bool IsValidGroupName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
           c == '-' || c == ':' || c == '@' || c == '/';
  });
}

struct OnlineTable::Row {
  std::weak_ptr<Session> session;
  // Replaced, never changed in place: readers copy the pointer under the lock and may keep
  // reading after they let go of it.
  std::shared_ptr<const v1::ConnectionContext> context;
  std::string user_agent;
};

OnlineTable::OnlineTable() = default;
OnlineTable::~OnlineTable() = default;

void OnlineTable::IndexLocked(Row& row) {
  if (!row.context->user_id().empty()) by_user_[row.context->user_id()].insert(&row);
  for (const std::string& group : row.context->groups()) by_group_[group].insert(&row);
}

void OnlineTable::UnindexLocked(Row& row) {
  auto erase = [&row](absl::flat_hash_map<std::string, RowSet>& index, const std::string& key) {
    auto it = index.find(key);
    if (it == index.end()) return;
    it->second.erase(&row);
    if (it->second.empty()) index.erase(it);  // Empty groups and users cost nothing.
  };
  if (!row.context->user_id().empty()) erase(by_user_, row.context->user_id());
  for (const std::string& group : row.context->groups()) erase(by_group_, group);
}

void OnlineTable::Add(const std::shared_ptr<Session>& session,
                      std::shared_ptr<const v1::ConnectionContext> context,
                      std::string user_agent) {
  auto row = std::make_unique<Row>();
  row->session = session;
  const std::string& id = context->connection_id();
  row->context = std::move(context);
  row->user_agent = std::move(user_agent);
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = rows_.try_emplace(id, std::move(row));
  if (!inserted) return;  // Ids are random 88-bit values: a clash is a bug, not a case.
  IndexLocked(*it->second);
}

void OnlineTable::Remove(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = rows_.find(id);
  if (it == rows_.end()) return;
  UnindexLocked(*it->second);
  rows_.erase(it);
}

std::shared_ptr<Session> OnlineTable::Find(std::string_view id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = rows_.find(absl::string_view(id.data(), id.size()));
  return it == rows_.end() ? nullptr : it->second->session.lock();
}

std::shared_ptr<const v1::ConnectionContext> OnlineTable::ContextOf(std::string_view id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = rows_.find(absl::string_view(id.data(), id.size()));
  return it == rows_.end() ? nullptr : it->second->context;
}

void OnlineTable::CollectLocked(const v1::Target& target,
                                std::vector<std::pair<Row*, bool>>& out,
                                std::vector<std::string>* gone) const {
  absl::flat_hash_set<absl::string_view> excluded(target.exclude_connection_ids().begin(),
                                                 target.exclude_connection_ids().end());
  auto wanted = [&](const Row& row) {
    const v1::ConnectionContext& c = *row.context;
    if (excluded.contains(c.connection_id())) return false;
    if (!target.functions().empty() &&
        std::find(target.functions().begin(), target.functions().end(), c.function()) ==
            target.functions().end()) {
      return false;
    }
    if (!target.app_id().empty() && c.app_id() != target.app_id()) return false;
    if (!target.channel().empty() && c.channel() != target.channel()) return false;
    return true;
  };
  absl::flat_hash_set<const Row*> seen;
  auto take = [&](Row* row, bool named) {
    if (wanted(*row) && seen.insert(row).second) out.emplace_back(row, named);
  };
  // Named ids first, so that a connection both named and in a group counts as named.
  for (const std::string& id : target.connection_ids()) {
    auto it = rows_.find(id);
    if (it != rows_.end()) {
      take(it->second.get(), true);
    } else if (gone != nullptr && !excluded.contains(id)) {
      gone->push_back(id);
    }
  }
  if (target.all()) {
    out.reserve(rows_.size());
    for (const auto& [id, row] : rows_) take(row.get(), false);
    return;  // Every other selector is inside "all".
  }
  for (const std::string& user : target.user_ids()) {
    if (auto it = by_user_.find(user); it != by_user_.end()) {
      for (Row* row : it->second) take(row, false);
    }
  }
  for (const std::string& group : target.groups()) {
    if (auto it = by_group_.find(group); it != by_group_.end()) {
      for (Row* row : it->second) take(row, false);
    }
  }
}

ResolvedTarget OnlineTable::Resolve(const v1::Target& target) const {
  ResolvedTarget result;
  std::vector<std::pair<Row*, bool>> rows;
  absl::ReaderMutexLock lock(&mu_);
  CollectLocked(target, rows, &result.gone);
  result.recipients.reserve(rows.size());
  for (auto [row, named] : rows) {
    if (std::shared_ptr<Session> session = row->session.lock()) {
      result.recipients.push_back({std::move(session), named});
    } else if (named) {
      result.gone.push_back(row->context->connection_id());
    }
  }
  return result;
}

int OnlineTable::Modify(const v1::Target& target, Change change,
                        std::vector<std::string>* gone) {
  std::vector<std::shared_ptr<Session>> changed;
  int affected = 0;
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::pair<Row*, bool>> rows;
    CollectLocked(target, rows, gone);
    for (auto [row, named] : rows) {
      ++affected;  // Addressed and held: a change that was already true still counts.
      auto next = std::make_shared<v1::ConnectionContext>(*row->context);
      if (!change(*next)) continue;
      UnindexLocked(*row);
      row->context = std::move(next);
      IndexLocked(*row);
      if (std::shared_ptr<Session> session = row->session.lock()) {
        changed.push_back(std::move(session));
      }
    }
  }
  // Told outside the lock: each session reads the newest context itself, so the order in
  // which these notes arrive does not matter.
  for (const std::shared_ptr<Session>& session : changed) session->RefreshIdentity();
  return affected;
}

void OnlineTable::FillInfoLocked(const Row& row, v1::ConnectionInfo& out) const {
  *out.mutable_connection() = *row.context;
  out.set_user_agent(row.user_agent);
  if (std::shared_ptr<Session> session = row.session.lock()) session->FillStats(out);
}

bool OnlineTable::Describe(std::string_view id, v1::ConnectionInfo& out) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = rows_.find(absl::string_view(id.data(), id.size()));
  if (it == rows_.end()) return false;
  FillInfoLocked(*it->second, out);
  return true;
}

OnlineTable::Page OnlineTable::List(const ListFilter& filter, size_t page_size,
                                    const std::string& page_token) const {
  Page page;
  auto matches = [&filter](const v1::ConnectionContext& c) {
    if (!filter.function.empty() && c.function() != filter.function) return false;
    if (!filter.user_id.empty() && c.user_id() != filter.user_id) return false;
    if (!filter.app_id.empty() && c.app_id() != filter.app_id) return false;
    if (!filter.channel.empty() && c.channel() != filter.channel) return false;
    if (!filter.group.empty() &&
        std::find(c.groups().begin(), c.groups().end(), filter.group) == c.groups().end()) {
      return false;
    }
    return true;
  };
  absl::ReaderMutexLock lock(&mu_);
  std::vector<const Row*> picked;
  picked.reserve(page_size + 1);
  if (!filter.user_id.empty() || !filter.group.empty()) {
    // An index narrows the scan to the user's or group's rows; they come unordered, so keep
    // the page_size + 1 smallest ids after the token.
    auto& map = filter.user_id.empty() ? by_group_ : by_user_;
    auto it = map.find(filter.user_id.empty() ? filter.group : filter.user_id);
    if (it == map.end()) return page;
    for (const Row* row : it->second) {
      if (row->context->connection_id() > page_token && matches(*row->context)) {
        picked.push_back(row);
      }
    }
    auto by_id = [](const Row* a, const Row* b) {
      return a->context->connection_id() < b->context->connection_id();
    };
    if (picked.size() > page_size + 1) {
      std::nth_element(picked.begin(), picked.begin() + page_size, picked.end(), by_id);
      picked.resize(page_size + 1);
    }
    std::sort(picked.begin(), picked.end(), by_id);
  } else {
    for (auto it = rows_.upper_bound(page_token); it != rows_.end(); ++it) {
      if (!matches(*it->second->context)) continue;
      picked.push_back(it->second.get());
      if (picked.size() > page_size) break;
    }
  }
  const bool more = picked.size() > page_size;
  if (more) picked.resize(page_size);
  page.rows.resize(picked.size());
  for (size_t i = 0; i < picked.size(); ++i) FillInfoLocked(*picked[i], page.rows[i]);
  if (more) page.next_token = picked.back()->context->connection_id();
  return page;
}

std::vector<std::shared_ptr<Session>> OnlineTable::Snapshot(std::string_view function) const {
  std::vector<std::shared_ptr<Session>> out;
  absl::ReaderMutexLock lock(&mu_);
  out.reserve(rows_.size());
  for (const auto& [id, row] : rows_) {
    if (!function.empty() && row->context->function() != function) continue;
    if (std::shared_ptr<Session> s = row->session.lock()) out.push_back(std::move(s));
  }
  return out;
}

size_t OnlineTable::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return rows_.size();
}

}  // namespace fngate::gateway
