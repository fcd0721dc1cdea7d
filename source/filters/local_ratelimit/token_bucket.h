#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "source/common/stats.h"

namespace phoenix::filters {

// Envoy-style token bucket with lazy refill: starts full, gains `tokens_per_fill` every
// `fill_interval_us` up to `max_tokens`. Not thread-safe; KeyedTokenBuckets locks around it.
class TokenBucket {
 public:
  TokenBucket(uint32_t max_tokens, uint32_t tokens_per_fill, uint64_t fill_interval_us,
              uint64_t now_us)
      : max_tokens_(max_tokens),
        tokens_per_fill_(tokens_per_fill),
        interval_us_(fill_interval_us),
        tokens_(max_tokens),
        last_fill_us_(now_us) {}

  // Takes a token if there is one.
  bool TryTake(uint64_t now_us);
  uint32_t tokens() const { return tokens_; }
  // Microseconds until the next fill.
  uint64_t UntilNextFillUs(uint64_t now_us) const;

 private:
  void Refill(uint64_t now_us);

  uint32_t max_tokens_;
  uint32_t tokens_per_fill_;
  uint64_t interval_us_;
  uint32_t tokens_;
  uint64_t last_fill_us_;
};

// Token buckets by key, shared by all workers: sharded by key hash, each shard a mutex, a
// map and an LRU list, so at most `max_keys` buckets exist however many distinct keys
// (client addresses, header values) arrive.
class KeyedTokenBuckets {
 public:
  struct Result {
    bool allowed;
    uint32_t remaining;
    uint64_t reset_us;  // Until the next fill.
  };

  // `keys` (may be null) tracks how many buckets exist.
  KeyedTokenBuckets(uint32_t max_tokens, uint32_t tokens_per_fill, uint64_t fill_interval_us,
                    size_t max_keys, Gauge* keys = nullptr);
  Result Take(std::string_view key, uint64_t now_us);
  size_t size() const;

 private:
  static constexpr size_t kShards = 16;
  struct Entry {
    TokenBucket bucket;
    std::list<std::string>::iterator lru;
  };
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, Entry> buckets ABSL_GUARDED_BY(mu);
    std::list<std::string> lru ABSL_GUARDED_BY(mu);  // Front: most recently used.
  };

  uint32_t max_tokens_;
  uint32_t tokens_per_fill_;
  uint64_t interval_us_;
  size_t num_shards_;  // 1 for small limits, so max_keys holds exactly.
  size_t max_keys_per_shard_;
  Gauge* keys_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace phoenix::filters
