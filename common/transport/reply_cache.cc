// ReplyCache: LRU bookkeeping for finished replies plus the in-progress set.
#include "common/transport/reply_cache.h"

namespace sy::transport {

ReplyCache::State ReplyCache::Begin(const Key& key, Message* reply) {
  absl::MutexLock lock(&mu_);
  if (in_progress_.contains(key)) return State::kInProgress;
  auto replies = done_.find(key.first);
  if (replies != done_.end()) {
    auto it = replies->second.find(key.second);
    if (it != replies->second.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      *reply = it->second.reply;  // frames are shared, not copied
      return State::kDone;
    }
  }
  in_progress_.insert(key);
  return State::kNew;
}

size_t ReplyCache::Complete(const Key& key, const Message& reply) {
  absl::MutexLock lock(&mu_);
  if (in_progress_.erase(key) == 0) return entries_;  // not begun here: nothing to remember
  const size_t bytes = reply.ByteSize();
  if (bytes > max_bytes_ || max_entries_ == 0) return entries_;
  lru_.push_front(key);
  done_[key.first][key.second] = Entry{reply, lru_.begin()};
  ++entries_;
  bytes_ += bytes;
  EvictLocked();
  return entries_;
}

size_t ReplyCache::ForgetBelow(const std::string& sender, uint64_t request_id) {
  absl::MutexLock lock(&mu_);
  auto replies = done_.find(sender);
  if (replies == done_.end()) return entries_;
  std::map<uint64_t, Entry>& by_id = replies->second;
  while (!by_id.empty() && by_id.begin()->first < request_id) EraseLocked(by_id, by_id.begin());
  if (by_id.empty()) done_.erase(replies);
  return entries_;
}

void ReplyCache::EvictLocked() {
  while (!lru_.empty() && (entries_ > max_entries_ || bytes_ > max_bytes_)) {
    const Key& oldest = lru_.back();
    auto replies = done_.find(oldest.first);
    EraseLocked(replies->second, replies->second.find(oldest.second));
    if (replies->second.empty()) done_.erase(replies);
  }
}

void ReplyCache::EraseLocked(std::map<uint64_t, Entry>& replies, std::map<uint64_t, Entry>::iterator it) {
  bytes_ -= it->second.reply.ByteSize();
  --entries_;
  lru_.erase(it->second.lru);
  replies.erase(it);
}

size_t ReplyCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_;
}

size_t ReplyCache::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace sy::transport
