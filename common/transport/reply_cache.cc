// ReplyCache: LRU bookkeeping for finished replies plus the in-progress set.
#include "common/transport/reply_cache.h"

namespace sy::transport {

ReplyCache::State ReplyCache::Begin(const Key& key, Message* reply) {
  absl::MutexLock lock(&mu_);
  if (in_progress_.contains(key)) return State::kInProgress;
  auto it = done_.find(key);
  if (it != done_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    *reply = it->second.reply;  // frames are shared, not copied
    return State::kDone;
  }
  in_progress_.insert(key);
  return State::kNew;
}

void ReplyCache::Complete(const Key& key, const Message& reply) {
  absl::MutexLock lock(&mu_);
  if (in_progress_.erase(key) == 0) return;  // not begun here: nothing to remember
  const size_t bytes = reply.ByteSize();
  if (bytes > max_bytes_ || max_entries_ == 0) return;
  lru_.push_front(key);
  done_[key] = Entry{reply, lru_.begin()};
  bytes_ += bytes;
  EvictLocked();
}

void ReplyCache::EvictLocked() {
  while (!lru_.empty() && (done_.size() > max_entries_ || bytes_ > max_bytes_)) {
    auto it = done_.find(lru_.back());
    bytes_ -= it->second.reply.ByteSize();
    done_.erase(it);
    lru_.pop_back();
  }
}

size_t ReplyCache::size() const {
  absl::MutexLock lock(&mu_);
  return done_.size();
}

size_t ReplyCache::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace sy::transport
