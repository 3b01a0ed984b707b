// File: gateway/online_table.h
// The online table: every open connection with its identity (user id, app id, channel,
// device id, metadata) and groups, indexed by id, by user and by group, so that control
// calls and reply actions can address connections by id, user, group or all, narrowed by
// function, app id and channel, and list them in stable pages.
//
// Thread-safe: one reader/writer mutex. Addressing and listing take it shared; connections
// coming and going and identity or group changes take it exclusively. Nothing on a
// connection's message path touches it. It holds weak_ptrs: a session's lifetime is its
// pending work (Beast's rule), never the table's.
//
// Identity lives here first: a change is applied under the lock (so the next call that
// addresses by user or group sees it at once), and the session is then told to pick up the
// new context for its later events (Session::RefreshIdentity).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "fngate/v1/control.pb.h"
#include "fngate/v1/events.pb.h"

namespace fngate::gateway {

class Session;

// No connection ids, user ids, groups, nor all: in a reply, "this connection".
bool IsEmptyTarget(const v1::Target& target);

// Group names: 1-128 bytes of letters, digits and ". _ - : @ /".
bool IsValidGroupName(std::string_view name);

// A Target resolved against the table.
struct ResolvedTarget {
  struct Recipient {
    std::shared_ptr<Session> session;
    bool named = false;  // Named by id: reported as gone if it turns out to be closing.
  };
  // Distinct live connections, each once, in no particular order.
  std::vector<Recipient> recipients;
  // Connection ids the target named that the table does not hold.
  std::vector<std::string> gone;
};

class OnlineTable {
 public:
  struct ListFilter {
    std::string function, user_id, group, app_id, channel;
  };
  struct Page {
    std::vector<v1::ConnectionInfo> rows;
    std::string next_token;  // Empty after the last page.
  };
  // Changes a context in place; returns whether it changed anything.
  using Change = absl::FunctionRef<bool(v1::ConnectionContext&)>;

  OnlineTable();
  ~OnlineTable();

  // Adds an open connection with its context as its connect reply left it; the session keeps
  // sharing it (one copy per connection), and the table replaces it on a change.
  void Add(const std::shared_ptr<Session>& session,
           std::shared_ptr<const v1::ConnectionContext> context, std::string user_agent);
  void Remove(const std::string& id);

  // Null when the id is unknown or its session is gone.
  std::shared_ptr<Session> Find(std::string_view id) const;
  // The connection's current context (identity and groups included); null when unknown.
  std::shared_ptr<const v1::ConnectionContext> ContextOf(std::string_view id) const;

  // Connections a target addresses: the union of connection ids, user ids, groups and all,
  // narrowed by functions, app id and channel, minus excluded ids.
  ResolvedTarget Resolve(const v1::Target& target) const;

  // Applies `change` to every connection `target` addresses, under the lock, and tells each
  // changed session. Returns how many held connections it addressed (a change that was
  // already in place counts); named ids that are gone go to `gone`.
  int Modify(const v1::Target& target, Change change, std::vector<std::string>* gone);

  // One row of the table, or NOT_FOUND-worthy false.
  bool Describe(std::string_view id, v1::ConnectionInfo& out) const;
  // Rows in id order after `page_token`, filtered. page_size is 1-1000.
  Page List(const ListFilter& filter, size_t page_size, const std::string& page_token) const;

  // Every live session (of `function` when given): for shutdown and keepalive ticks.
  std::vector<std::shared_ptr<Session>> Snapshot(std::string_view function = {}) const;
  size_t size() const;

 private:
  struct Row;
  using RowSet = absl::flat_hash_set<Row*>;

  // Rows a target addresses, each once, with whether it was named by id.
  void CollectLocked(const v1::Target& target, std::vector<std::pair<Row*, bool>>& rows,
                     std::vector<std::string>* gone) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void IndexLocked(Row& row) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnindexLocked(Row& row) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillInfoLocked(const Row& row, v1::ConnectionInfo& out) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  // Ordered by id: pages are ranges of ids, stable while rows come and go.
  absl::btree_map<std::string, std::unique_ptr<Row>> rows_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, RowSet> by_user_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, RowSet> by_group_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fngate::gateway
