#include "source/filters/global_ratelimit/redis_counter_store.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/logging.h"
#include "source/common/random.h"
#include "source/common/strings.h"
#include "source/common/timeout_queue.h"

namespace phoenix::filters {
namespace {

constexpr std::chrono::milliseconds kMinBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{2000};
constexpr std::chrono::milliseconds kConnectTimeout{1000};

// The count of one request or lease, atomic in Redis: INCRBY the window's key (its TTL set
// when it is made) and, for a sliding window, read the previous window's. ARGV: the TTL, the
// amount (negative: a refund, never taking the count below 0). Returns {current, previous}.
constexpr std::string_view kIncrementScript =
    "local n = tonumber(ARGV[2])\n"
    "if n < 0 then\n"
    "  local have = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "  if have <= 0 then return {0, 0} end\n"
    "  if -n > have then n = -have end\n"
    "end\n"
    "local c = redis.call('INCRBY', KEYS[1], n)\n"
    "if c == n then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
    "local p = 0\n"
    "if #KEYS > 1 then p = tonumber(redis.call('GET', KEYS[2]) or '0') end\n"
    "return {c, p}\n";

// RESP, written by hand: one allocation-free append per argument instead of hiredis's
// printf-style formatting.
void AppendBulk(std::string& out, std::string_view value) {
  absl::StrAppend(&out, "$", value.size(), "\r\n", AbslView(value), "\r\n");
}

// FNV-1a: the same on every build, so every sidecar sends a key to the same address.
uint64_t StableHash(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

// hiredis's event hooks on a libuv poll handle: hiredis's own libuv adapter
// (hiredis/adapters/libuv.h), with two changes.
// - Debian's hiredis 0.14 adapter drops a poll error: libuv reports POLLERR (a connection reset
//   by a Redis that died, a refused connect) as the callback's status and stops the handle,
//   and the adapter then returns without telling hiredis, so the connection hangs and never
//   reconnects. Here an error is handed to hiredis as readiness, so its read or write meets
//   the socket error and it disconnects (as upstream hiredis's adapter does since 1.0).
// - Commands are written once per loop iteration, not on a writable event: a connected
//   socket almost always takes them at once, which saves a wakeup and two epoll changes per
//   batch. Only what the socket does not take waits for writable.
struct UvRedisEvents {
  redisAsyncContext* context;
  Dispatcher* dispatcher;
  uv_poll_t handle{};
  int events = 0;
  bool flush_scheduled = false;
  bool flushing = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);  // Until the cleanup.

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<UvRedisEvents*>(handle->data);
    int ready = status < 0 ? self->events : events;
    // A hook may free the context (cleanup clears `context`); `self` lives until the close.
    if (self->context != nullptr && (ready & UV_READABLE)) redisAsyncHandleRead(self->context);
    if (self->context != nullptr && (ready & UV_WRITABLE)) redisAsyncHandleWrite(self->context);
  }
  static void Update(void* data, int add, int remove) {
    auto* self = static_cast<UvRedisEvents*>(data);
    int events = (self->events | add) & ~remove;
    // Unchanged and still polled: restarting would only cost an epoll change.
    bool polled = uv_is_active(reinterpret_cast<uv_handle_t*>(&self->handle)) != 0;
    if (events == self->events && polled == (events != 0)) return;
    self->events = events;
    if (self->events != 0) {
      uv_poll_start(&self->handle, self->events, &UvRedisEvents::OnPoll);
    } else {
      uv_poll_stop(&self->handle);
    }
  }
  static void AddWrite(void* data) {
    auto* self = static_cast<UvRedisEvents*>(data);
    // Connecting (hiredis learns the connect's outcome from the first writable event), or a
    // flush the socket did not take whole: wait for writable.
    if (self->flushing || !(self->context->c.flags & REDIS_CONNECTED)) {
      Update(data, UV_WRITABLE, 0);
      return;
    }
    if (self->flush_scheduled) return;
    self->flush_scheduled = true;
    self->dispatcher->Defer([self, alive = std::weak_ptr<bool>(self->alive)] {
      if (alive.expired()) return;
      self->flush_scheduled = false;
      if (self->context == nullptr) return;
      self->flushing = true;
      redisAsyncHandleWrite(self->context);  // May free the context; `self` lives on.
      self->flushing = false;
    });
  }
  static void Cleanup(void* data) {
    auto* self = static_cast<UvRedisEvents*>(data);
    self->context = nullptr;
    self->alive.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&self->handle),
             [](uv_handle_t* handle) { delete static_cast<UvRedisEvents*>(handle->data); });
  }

  static bool Attach(redisAsyncContext* context, Dispatcher& dispatcher) {
    auto* self = new UvRedisEvents{context, &dispatcher};
    if (uv_poll_init(dispatcher.loop(), &self->handle, context->c.fd) != 0) {
      delete self;
      return false;
    }
    self->handle.data = self;
    context->ev.data = self;
    context->ev.addRead = [](void* data) { Update(data, UV_READABLE, 0); };
    context->ev.delRead = [](void* data) { Update(data, 0, UV_READABLE); };
    context->ev.addWrite = &UvRedisEvents::AddWrite;
    context->ev.delWrite = [](void* data) { Update(data, 0, UV_WRITABLE); };
    context->ev.cleanup = &UvRedisEvents::Cleanup;
    return true;
  }
};

bool ParseCount(const redisReply* reply, uint64_t* out) {
  if (reply->type == REDIS_REPLY_INTEGER) {
    if (reply->integer < 0) return false;
    *out = static_cast<uint64_t>(reply->integer);
    return true;
  }
  if (reply->type == REDIS_REPLY_NIL) {
    *out = 0;
    return true;
  }
  if (reply->type == REDIS_REPLY_STRING) {
    auto [end, error] = std::from_chars(reply->str, reply->str + reply->len, *out);
    return error == std::errc() && end == reply->str + reply->len;
  }
  return false;
}

}  // namespace

absl::StatusOr<RedisAddress> RedisAddress::Parse(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat("'", std::string(text), "' is not host:port"));
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return absl::InvalidArgumentError(
          absl::StrCat("'", std::string(text), "' is not [v6 address]:port"));
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", std::string(text), "': write an IPv6 address as [address]:port"));
  }
  int port = 0;
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || end != port_text.data() + port_text.size() || port < 1 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", std::string(text), "': the port must be 1..65535"));
  }
  return RedisAddress{std::string(host), port};
}

// One increment in flight: hiredis holds it as the EXEC's privdata until the reply (or the
// connection's end) comes, whatever happened to the request meanwhile; cancelling or timing
// out only silences it.
class RedisConnection::PendingIncrement : public CounterCall, public TimeoutQueue::Entry {
 public:
  explicit PendingIncrement(CounterCallbacks& callbacks) : callbacks_(&callbacks) {}
  virtual ~PendingIncrement() = default;

  void Cancel() override {
    callbacks_ = nullptr;
    Disarm();
  }
  void OnTimeout() override { Answer({CounterReply::Status::kTimeout}); }
  // Hands `reply` to the callbacks, if they still listen.
  void Answer(const CounterReply& reply) {
    Disarm();
    CounterCallbacks* callbacks = callbacks_;
    callbacks_ = nullptr;
    if (callbacks != nullptr) callbacks->OnCounted(reply);
  }

 private:
  CounterCallbacks* callbacks_;
};

RedisConnection::RedisConnection(Dispatcher& dispatcher, RedisAddress address,
                                 std::chrono::milliseconds timeout)
    : dispatcher_(dispatcher),
      address_(std::move(address)),
      timeout_(timeout),
      backoff_(kMinBackoff) {
  reconnect_timer_ = dispatcher_.CreateTimer([this] { Connect(); });
  connect_timer_ = dispatcher_.CreateTimer([this] {
    PHX_LOG(kWarn, "redis ", address_.host, ":", address_.port, ": connect timed out");
    Drop();
  });
  Connect();
}

RedisConnection::~RedisConnection() { Shutdown(); }

void RedisConnection::Connect() {
  if (shut_down_) return;
  redisAsyncContext* context = redisAsyncConnect(address_.host.c_str(), address_.port);
  if (context == nullptr || context->err != 0) {
    PHX_LOG(kWarn, "redis ", address_.host, ":", address_.port, ": ",
            context != nullptr ? context->errstr : "out of memory");
    if (context != nullptr) redisAsyncFree(context);
    ScheduleReconnect();
    return;
  }
  context->data = this;
  if (!UvRedisEvents::Attach(context, dispatcher_)) {
    redisAsyncFree(context);
    ScheduleReconnect();
    return;
  }
  redisAsyncSetConnectCallback(context, &RedisConnection::OnConnect);
  redisAsyncSetDisconnectCallback(context, &RedisConnection::OnDisconnect);
  context_ = context;
  script_sha_.clear();
  LoadScript();  // Sent once connected, ahead of every increment.
  connect_timer_->Enable(kConnectTimeout);
}

void RedisConnection::OnConnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (self->shut_down_) return;
  self->connect_timer_->Disable();
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback; calls queued on it hear an error.
    PHX_LOG(kWarn, "redis ", self->address_.host, ":", self->address_.port,
            ": cannot connect: ", context->errstr);
    self->context_ = nullptr;
    self->ScheduleReconnect();
    return;
  }
  PHX_LOG(kInfo, "redis ", self->address_.host, ":", self->address_.port, ": connected");
  self->connected_ = true;
  self->backoff_ = kMinBackoff;
}

void RedisConnection::OnDisconnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  // hiredis frees the context after this callback.
  self->context_ = nullptr;
  self->connected_ = false;
  if (self->shut_down_) return;
  PHX_LOG(kWarn, "redis ", self->address_.host, ":", self->address_.port,
          ": connection lost: ", status == REDIS_OK ? "closed" : context->errstr);
  self->ScheduleReconnect();
}

void RedisConnection::Drop() {
  connect_timer_->Disable();
  redisAsyncContext* context = context_;
  context_ = nullptr;
  connected_ = false;
  // Calls in flight hear an error. Not connected: no OnDisconnect.
  if (context != nullptr) redisAsyncFree(context);
  ScheduleReconnect();
}

void RedisConnection::ScheduleReconnect() {
  if (shut_down_) return;
  // Jittered, so a fleet whose Redis comes back does not reconnect in one burst.
  thread_local FastRandom random;
  auto delay = backoff_ / 2 + std::chrono::milliseconds(random() % (backoff_.count() / 2 + 1));
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  reconnect_timer_->Enable(delay);
}

void RedisConnection::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // On the loop's thread, while the loop still runs: the handles close here, not later.
  reconnect_timer_.reset();
  connect_timer_.reset();
  redisAsyncContext* context = context_;
  context_ = nullptr;
  connected_ = false;
  if (context != nullptr) redisAsyncFree(context);  // Calls in flight hear an error.
}

CounterCall* RedisConnection::Increment(const CounterRequest& request,
                                        CounterCallbacks& callbacks) {
  // Calls made while the connection is being made wait in hiredis's buffer, under the timeout.
  if (context_ == nullptr) return nullptr;
  bool sliding = !request.previous_key.empty();
  // EVALSHA once SCRIPT LOAD has answered; until then (and after a NOSCRIPT) the script itself.
  command_.clear();
  absl::StrAppend(&command_, "*", sliding ? 7 : 6, "\r\n");
  if (script_sha_.empty()) {
    AppendBulk(command_, "EVAL");
    AppendBulk(command_, kIncrementScript);
  } else {
    AppendBulk(command_, "EVALSHA");
    AppendBulk(command_, script_sha_);
  }
  AppendBulk(command_, sliding ? "2" : "1");
  AppendBulk(command_, request.key);
  if (sliding) AppendBulk(command_, request.previous_key);
  AppendBulk(command_, absl::StrCat(request.ttl_s));
  AppendBulk(command_, absl::StrCat(request.amount));
  auto* pending = new PendingIncrement(callbacks);
  if (redisAsyncFormattedCommand(context_, &RedisConnection::OnReply, pending, command_.data(),
                                 command_.size()) != REDIS_OK) {
    delete pending;
    return nullptr;
  }
  dispatcher_.TimeoutQueueFor(timeout_).Arm(*pending);
  return pending;
}

void RedisConnection::LoadScript() {
  command_.clear();
  command_ = "*3\r\n";
  AppendBulk(command_, "SCRIPT");
  AppendBulk(command_, "LOAD");
  AppendBulk(command_, kIncrementScript);
  redisAsyncFormattedCommand(context_, &RedisConnection::OnScriptLoaded, nullptr, command_.data(),
                             command_.size());
}

void RedisConnection::OnScriptLoaded(redisAsyncContext* context, void* reply_ptr, void*) {
  const auto* reply = static_cast<const redisReply*>(reply_ptr);
  auto* self = static_cast<RedisConnection*>(context->data);
  if (reply != nullptr && reply->type == REDIS_REPLY_STRING) {
    self->script_sha_.assign(reply->str, reply->len);
  }
}

void RedisConnection::OnReply(redisAsyncContext* context, void* reply_ptr, void* privdata) {
  std::unique_ptr<PendingIncrement> pending(static_cast<PendingIncrement*>(privdata));
  const auto* reply = static_cast<const redisReply*>(reply_ptr);
  CounterReply answer;
  if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
      ParseCount(reply->element[0], &answer.current) &&
      ParseCount(reply->element[1], &answer.previous)) {
    answer.status = CounterReply::Status::kOk;
  } else if (reply != nullptr) {
    std::string_view error = reply->type == REDIS_REPLY_ERROR
                                 ? std::string_view(reply->str, reply->len)
                                 : std::string_view();
    PHX_LOG(kWarn, "redis: unexpected reply to the increment script (type ", reply->type, ")",
            error.empty() ? "" : ": ", AbslView(error));
    auto* self = static_cast<RedisConnection*>(context->data);
    if (error.starts_with("NOSCRIPT") && !self->script_sha_.empty()) {
      // The script cache was flushed: send the script itself until it is loaded again.
      self->script_sha_.clear();
      self->LoadScript();
    }
  }
  pending->Answer(answer);
}

RedisCounterStore::RedisCounterStore(Dispatcher& dispatcher,
                                     const std::vector<RedisAddress>& addresses,
                                     std::chrono::milliseconds timeout) {
  for (const RedisAddress& address : addresses) {
    connections_.push_back(std::make_unique<RedisConnection>(dispatcher, address, timeout));
  }
}

CounterCall* RedisCounterStore::Increment(const CounterRequest& request,
                                          CounterCallbacks& callbacks) {
  if (connections_.empty()) return nullptr;
  size_t index = connections_.size() == 1 ? 0 : StableHash(request.key) % connections_.size();
  return connections_[index]->Increment(request, callbacks);
}

void RedisCounterStore::Shutdown() {
  for (auto& connection : connections_) connection->Shutdown();
}

namespace {

// This thread's stores, by addresses and timeout. Shut down (their handles closed) when the
// thread's loop exits; a store no config uses any more is dropped when another is made.
struct ThreadStores {
  Dispatcher* dispatcher = nullptr;
  std::map<std::string, std::shared_ptr<RedisCounterStore>> stores;
};
thread_local ThreadStores thread_stores;

}  // namespace

RedisCounterStoreProvider::RedisCounterStoreProvider(std::vector<RedisAddress> addresses,
                                                     std::chrono::milliseconds timeout)
    : addresses_(std::move(addresses)), timeout_(timeout) {
  std::vector<std::string> parts;
  for (const RedisAddress& address : addresses_) {
    parts.push_back(absl::StrCat(address.host, "|", address.port));
  }
  key_ = absl::StrCat(absl::StrJoin(parts, ","), "/", timeout_.count());
}

std::shared_ptr<CounterStore> RedisCounterStoreProvider::StoreFor(Dispatcher& dispatcher) {
  ThreadStores& local = thread_stores;
  if (local.dispatcher != &dispatcher) {
    // First use on this thread (or a new loop on it, as tests make): hook the loop's exit.
    for (auto& [key, store] : local.stores) store->Shutdown();
    local.stores.clear();
    local.dispatcher = &dispatcher;
    dispatcher.AddExitCallback([&local, loop = &dispatcher] {
      if (local.dispatcher != loop) return;
      for (auto& [key, store] : local.stores) store->Shutdown();
      local.stores.clear();
      local.dispatcher = nullptr;
    });
  }
  auto it = local.stores.find(key_);
  if (it != local.stores.end()) return it->second;
  std::erase_if(local.stores, [](const auto& entry) {
    if (entry.second.use_count() > 1) return false;
    entry.second->Shutdown();
    return true;
  });
  auto store = std::make_shared<RedisCounterStore>(dispatcher, addresses_, timeout_);
  local.stores.emplace(key_, store);
  return store;
}

}  // namespace phoenix::filters
