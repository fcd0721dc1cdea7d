#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "source/common/dispatcher.h"

namespace phoenix::server {

// One readiness check of a supervised instance on 127.0.0.1:<port>, on the main loop: a TCP
// connect, or with `http_path` a GET of that path answered 2xx. `done(ready, detail)` runs once
// (detail says why not), at the latest after `timeout`; never after the probe is destroyed.
class ReadinessProbe {
 public:
  using Callback = std::function<void(bool ready, std::string detail)>;
  ReadinessProbe(Dispatcher& dispatcher, uint32_t port, std::string http_path,
                 std::chrono::milliseconds timeout, Callback done);
  ~ReadinessProbe();

 private:
  struct Socket;
  void Finish(bool ready, std::string detail);
  void OnConnected(int status);
  void OnRead(ssize_t n, const char* data);

  std::string http_path_;
  Callback done_;
  Socket* socket_ = nullptr;  // Freed by its close callback.
  std::unique_ptr<Timer> timeout_;
  std::string response_;
};

}  // namespace phoenix::server
