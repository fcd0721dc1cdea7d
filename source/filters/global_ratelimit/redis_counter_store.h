#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/common/dispatcher.h"
#include "source/filters/global_ratelimit/counter_store.h"

struct redisAsyncContext;

namespace phoenix::filters {

// A Redis server's address, from "host:port" or "[v6]:port".
struct RedisAddress {
  std::string host;
  int port = 0;
  static absl::StatusOr<RedisAddress> Parse(std::string_view text);
};

// One connection to one Redis server on one worker's loop, through hiredis's async API and
// its libuv adapter: the only place Phoenix talks to hiredis. Reconnects with back-off when
// the connection drops or cannot be made; while it is down, Increment() answers null at once.
class RedisConnection {
 public:
  RedisConnection(Dispatcher& dispatcher, RedisAddress address, std::chrono::milliseconds timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // One script (EVALSHA): INCR key, EXPIRE it when new, GET previous_key for a sliding
  // window — atomic, one round trip.
  CounterCall* Increment(const CounterRequest& request, CounterCallbacks& callbacks);
  // Closes the connection (calls in flight hear an error) and stops reconnecting.
  void Shutdown();
  bool connected() const { return connected_; }

 private:
  class PendingIncrement;

  void Connect();
  void Drop();  // Frees the context (not connected yet, or gone bad); reconnects later.
  void ScheduleReconnect();
  static void OnConnect(const redisAsyncContext* context, int status);
  static void OnDisconnect(const redisAsyncContext* context, int status);
  static void OnReply(redisAsyncContext* context, void* reply, void* privdata);
  void LoadScript();
  static void OnScriptLoaded(redisAsyncContext* context, void* reply, void* privdata);

  Dispatcher& dispatcher_;
  RedisAddress address_;
  std::chrono::milliseconds timeout_;
  redisAsyncContext* context_ = nullptr;
  bool connected_ = false;
  bool shut_down_ = false;
  std::chrono::milliseconds backoff_;
  std::unique_ptr<Timer> reconnect_timer_;
  std::unique_ptr<Timer> connect_timer_;  // Gives up on a connect that hangs.
  std::string script_sha_;                // The increment script's, once SCRIPT LOAD has answered.
  std::string command_;                   // Reused for each command's RESP.
};

// A worker's store: one connection per Redis address, each key on the address its hash picks
// (the same on every sidecar that lists the same addresses).
class RedisCounterStore : public CounterStore {
 public:
  RedisCounterStore(Dispatcher& dispatcher, const std::vector<RedisAddress>& addresses,
                    std::chrono::milliseconds timeout);
  CounterCall* Increment(const CounterRequest& request, CounterCallbacks& callbacks) override;
  void Shutdown();

 private:
  std::vector<std::unique_ptr<RedisConnection>> connections_;
};

// Each worker's RedisCounterStore for one set of addresses and timeout: shared by every
// config that names them (a reload keeps the connections), made on the worker's thread, and
// shut down there when its loop exits.
class RedisCounterStoreProvider : public CounterStoreProvider {
 public:
  RedisCounterStoreProvider(std::vector<RedisAddress> addresses, std::chrono::milliseconds timeout);
  std::shared_ptr<CounterStore> StoreFor(Dispatcher& dispatcher) override;

 private:
  std::vector<RedisAddress> addresses_;
  std::chrono::milliseconds timeout_;
  std::string key_;  // Names the store in each thread's registry.
};

}  // namespace phoenix::filters
