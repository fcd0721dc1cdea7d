#include "source/filters/local_ratelimit/token_bucket.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "source/common/strings.h"

namespace phoenix::filters {

void TokenBucket::Refill(uint64_t now_us) {
  if (now_us <= last_fill_us_ || interval_us_ == 0) return;
  uint64_t fills = (now_us - last_fill_us_) / interval_us_;
  if (fills == 0) return;
  uint64_t tokens = tokens_ + fills * tokens_per_fill_;
  tokens_ = static_cast<uint32_t>(std::min<uint64_t>(tokens, max_tokens_));
  last_fill_us_ += fills * interval_us_;
}

bool TokenBucket::TryTake(uint64_t now_us) {
  Refill(now_us);
  if (tokens_ == 0) return false;
  --tokens_;
  return true;
}

uint64_t TokenBucket::UntilNextFillUs(uint64_t now_us) const {
  if (interval_us_ == 0) return 0;
  uint64_t elapsed = now_us > last_fill_us_ ? now_us - last_fill_us_ : 0;
  return interval_us_ - elapsed % interval_us_;
}

KeyedTokenBuckets::KeyedTokenBuckets(uint32_t max_tokens, uint32_t tokens_per_fill,
                                     uint64_t fill_interval_us, size_t max_keys, Gauge* keys)
    : max_tokens_(max_tokens),
      tokens_per_fill_(tokens_per_fill),
      interval_us_(fill_interval_us),
      num_shards_(max_keys >= 64 ? kShards : 1),
      max_keys_per_shard_(std::max<size_t>(1, max_keys / num_shards_)),
      keys_(keys),
      shards_(new Shard[kShards]) {}

KeyedTokenBuckets::Result KeyedTokenBuckets::Take(std::string_view key, uint64_t now_us) {
  absl::string_view absl_key = AbslView(key);
  Shard& shard = shards_[absl::Hash<absl::string_view>()(absl_key) % num_shards_];
  absl::MutexLock lock(&shard.mu);
  auto it = shard.buckets.find(absl_key);
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= max_keys_per_shard_) {
      // Forget the least recently used key: a flood of new keys cannot grow memory.
      shard.buckets.erase(shard.lru.back());
      shard.lru.pop_back();
      if (keys_ != nullptr) keys_->Dec();
    }
    if (keys_ != nullptr) keys_->Inc();
    shard.lru.emplace_front(key);
    it = shard.buckets
             .emplace(std::string(key),
                      Entry{TokenBucket(max_tokens_, tokens_per_fill_, interval_us_, now_us),
                            shard.lru.begin()})
             .first;
  } else {
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second.lru);
  }
  TokenBucket& bucket = it->second.bucket;
  bool allowed = bucket.TryTake(now_us);
  return Result{allowed, bucket.tokens(), bucket.UntilNextFillUs(now_us)};
}

size_t KeyedTokenBuckets::size() const {
  size_t total = 0;
  for (size_t i = 0; i < kShards; ++i) {
    absl::MutexLock lock(&shards_[i].mu);
    total += shards_[i].buckets.size();
  }
  return total;
}

}  // namespace phoenix::filters
