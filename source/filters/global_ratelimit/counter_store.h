#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace phoenix {
class Dispatcher;
}  // namespace phoenix

namespace phoenix::filters {

// One increment of a shared counter: the current window's key is incremented by `amount`
// (and expires `ttl_s` seconds later); for a sliding window the previous window's key is read
// with it.
struct CounterRequest {
  std::string key;
  std::string previous_key;  // "" for a fixed window.
  uint32_t ttl_s = 0;
  int64_t amount = 1;  // Above 1: a token lease; below 0: a lease's unused part given back.
};

// What the store answered.
struct CounterReply {
  enum class Status { kOk, kTimeout, kError };
  Status status = Status::kError;
  uint64_t current = 0;   // The current window's count, this increment included.
  uint64_t previous = 0;  // The previous window's count (0 for a fixed window).
  bool ok() const { return status == Status::kOk; }
};

// Hears the reply of one increment, on the thread that asked.
class CounterCallbacks {
 public:
  virtual void OnCounted(const CounterReply& reply) = 0;

 protected:
  ~CounterCallbacks() = default;
};

// An increment in flight. Cancel() before the callbacks go away: they hear nothing after it.
class CounterCall {
 public:
  virtual void Cancel() = 0;

 protected:
  ~CounterCall() = default;
};

// Where the global limits' counters live (Redis in production, a fake in tests): the seam
// that keeps the filter apart from the Redis client. One per worker; used on its thread.
class CounterStore {
 public:
  virtual ~CounterStore() = default;
  // Counts `request`; `callbacks` hear the reply later (never from inside this call), unless
  // the call is cancelled first. Null: the store cannot count now (no connection); nothing
  // calls back.
  virtual CounterCall* Increment(const CounterRequest& request, CounterCallbacks& callbacks) = 0;
};

// Gives each worker its store. Called on the worker's thread.
class CounterStoreProvider {
 public:
  virtual ~CounterStoreProvider() = default;
  virtual std::shared_ptr<CounterStore> StoreFor(Dispatcher& dispatcher) = 0;
};

}  // namespace phoenix::filters
