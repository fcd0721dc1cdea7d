#pragma once

#include <uv.h>

#include <chrono>
#include <functional>

#include "source/common/dispatcher.h"

namespace phoenix::fakes {

// A real Dispatcher that a test drives by hand instead of Run(): deferred work, deferred
// deletes and due timers run when the test asks. Closes its handles on destruction, so
// declare it before (destroy it after) every object that uses it.
class TestDispatcher : public Dispatcher {
 public:
  ~TestDispatcher() {
    RunPending();
    Exit();
    uv_run(loop(), UV_RUN_DEFAULT);  // Lets the closes complete.
  }

  // One loop iteration that does not wait: runs deferred work (and what it defers in turn),
  // timers already due, and pending closes.
  void RunPending() { uv_run(loop(), UV_RUN_NOWAIT); }

  // Runs the loop, waiting for timers, until `done` holds or `limit` passes. For timeouts the
  // code under test arms on the loop: the loop wakes when the timer is due, never on a sleep.
  // Returns `done()`.
  bool RunUntil(const std::function<bool()>& done,
                std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    bool expired = false;
    Timer guard(loop(), [&expired] { expired = true; });
    guard.Enable(limit);
    while (!done() && !expired) uv_run(loop(), UV_RUN_ONCE);
    return done();
  }
};

}  // namespace phoenix::fakes
