// Receiver-side duplicate suppression for RpcNode: remembers, per (sender, request
// id), whether a request is being handled and, once answered, its reply. A repeated
// request is answered from here and never handed to the handler twice. Finished
// replies are kept in LRU order, bounded by entry count and total bytes; requests in
// progress are tracked separately (they hold no bytes) and never evicted. A sender says
// which of its replies it no longer needs (Envelope.answeredBelow: its ids are
// increasing), and ForgetBelow drops them, so a caller with a few calls in flight keeps
// only those few replies here instead of the last max_entries.
//
// Thread-safe (one mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "common/transport/message.h"

namespace sy::transport {

class ReplyCache {
 public:
  using Key = std::pair<std::string, uint64_t>;  // (sender node id, request id)
  enum class State { kNew, kInProgress, kDone };

  ReplyCache(size_t max_entries, size_t max_bytes) : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // kNew: the key was unknown and is now marked in progress (the caller handles it).
  // kInProgress: being handled already. kDone: *reply holds the cached reply.
  State Begin(const Key& key, Message* reply);
  // Stores the reply of a request begun with Begin (dropped if larger than max_bytes).
  // Returns the number of finished replies held.
  size_t Complete(const Key& key, const Message& reply);
  // Drops the finished replies to `sender`'s requests with ids below `request_id`.
  // Returns the number of finished replies held.
  size_t ForgetBelow(const std::string& sender, uint64_t request_id);

  size_t size() const;   // finished entries held
  size_t bytes() const;  // their total bytes

 private:
  struct Entry {
    Message reply;
    std::list<Key>::iterator lru;
  };
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(std::map<uint64_t, Entry>& replies, std::map<uint64_t, Entry>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_entries_;
  const size_t max_bytes_;
  mutable absl::Mutex mu_;
  absl::flat_hash_set<Key> in_progress_ ABSL_GUARDED_BY(mu_);
  // Finished replies by sender, then request id (ordered, for ForgetBelow).
  absl::flat_hash_map<std::string, std::map<uint64_t, Entry>> done_ ABSL_GUARDED_BY(mu_);
  std::list<Key> lru_ ABSL_GUARDED_BY(mu_);  // front = most recently used
  size_t entries_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sy::transport
