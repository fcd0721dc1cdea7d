#pragma once

#include <cstdint>
#include <vector>

#include "source/http/connection_manager.h"

namespace phoenix::fakes {

// Stands for the worker that owns connection managers: a real dispatcher, a draining flag the
// test sets, a predictable Random(), and a record of the connections that said they closed
// (the real worker deletes them there; here the test owns them).
class FakeWorkerContext : public http::WorkerContext {
 public:
  explicit FakeWorkerContext(Dispatcher& dispatcher) : dispatcher_(dispatcher) {}

  Dispatcher& dispatcher() override { return dispatcher_; }
  bool draining() const override { return is_draining; }
  bool shedding_load() const override { return is_shedding_load; }
  uint64_t Random() override { return next_random++; }
  void OnConnectionClosed(http::ConnectionManager* connection) override {
    closed_connections.push_back(connection);
  }

  bool is_draining = false;
  bool is_shedding_load = false;
  uint64_t next_random = 1;
  std::vector<http::ConnectionManager*> closed_connections;

 private:
  Dispatcher& dispatcher_;
};

}  // namespace phoenix::fakes
