#pragma once

#include <chrono>
#include <memory>

#include "source/common/dispatcher.h"

namespace phoenix {

// Any number of timeouts of one fixed duration on one loop, for the cost of one libuv timer.
// With a fixed duration, deadlines expire in the order entries were (re)armed, so a FIFO
// list is already sorted. This keeps an idle connection down to an intrusive list node
// instead of a timer handle: 10,000 idle keep-alive connections cost ~400 KB less.
class TimeoutQueue {
 public:
  // Something with a timeout; derive from it. Destruction disarms.
  class Entry {
   public:
    virtual ~Entry() { Disarm(); }
    virtual void OnTimeout() = 0;
    void Disarm();
    bool armed() const { return queue_ != nullptr; }

   private:
    friend class TimeoutQueue;
    Entry* prev_ = nullptr;
    Entry* next_ = nullptr;
    TimeoutQueue* queue_ = nullptr;
    MonotonicTime deadline_;
  };

  TimeoutQueue(Dispatcher& dispatcher, std::chrono::milliseconds duration);
  ~TimeoutQueue();

  // (Re)starts `entry`'s timeout from now; it leaves any queue it was in.
  void Arm(Entry& entry);

 private:
  void Unlink(Entry& entry);
  void Schedule();
  void OnTimer();

  Dispatcher& dispatcher_;
  std::chrono::milliseconds duration_;
  Entry* head_ = nullptr;
  Entry* tail_ = nullptr;
  std::unique_ptr<Timer> timer_;
};

}  // namespace phoenix
