#pragma once

#include <uv.h>

#include <chrono>
#include <functional>

#include "source/common/dispatcher.h"
#include "source/common/time_source.h"

namespace phoenix::fakes {

// A real Dispatcher that a test drives by hand instead of Run(): deferred work, deferred
// deletes and due timers run when the test asks. Closes its handles on destruction, so
// declare it before (destroy it after) every object that uses it.
// Holds the clock so that it is built before the Dispatcher base that uses it.
struct RealClockHolder {
  RealTimeSource clock;
};

class TestDispatcher : private RealClockHolder, public Dispatcher {
 public:
  TestDispatcher() : Dispatcher(clock) {}
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
    struct State {
      const std::function<bool()>& done;
      bool expired = false;
      bool finished() const { return expired || done(); }
    } state{done};
    std::unique_ptr<Timer> guard = CreateTimer([&state] { state.expired = true; });
    guard->Enable(limit);
    // A timer that fires at the top of an iteration may finish the wait; checked again before
    // the loop would block for I/O, so it does not go on to wait for the next timer.
    auto* prepare = new uv_prepare_t;
    uv_prepare_init(loop(), prepare);
    prepare->data = &state;
    uv_prepare_start(prepare, [](uv_prepare_t* handle) {
      if (static_cast<State*>(handle->data)->finished()) uv_stop(handle->loop);
    });
    while (!state.finished()) uv_run(loop(), UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(prepare),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_prepare_t*>(handle); });
    return done();
  }
};

}  // namespace phoenix::fakes
