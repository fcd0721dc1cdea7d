#include "source/common/timeout_queue.h"

#include <algorithm>

namespace phoenix {

void TimeoutQueue::Entry::Disarm() {
  if (queue_ != nullptr) queue_->Unlink(*this);
}

TimeoutQueue::TimeoutQueue(Dispatcher& dispatcher, std::chrono::milliseconds duration)
    : dispatcher_(dispatcher),
      duration_(duration),
      timer_(dispatcher.CreateTimer([this] { OnTimer(); })) {}

TimeoutQueue::~TimeoutQueue() {
  while (head_ != nullptr) Unlink(*head_);
}

void TimeoutQueue::Arm(Entry& entry) {
  entry.Disarm();
  entry.queue_ = this;
  entry.deadline_ = dispatcher_.ApproximateMonotonicTime() + duration_;
  entry.prev_ = tail_;
  entry.next_ = nullptr;
  if (tail_ != nullptr) {
    tail_->next_ = &entry;
  } else {
    head_ = &entry;
  }
  tail_ = &entry;
  if (!timer_->enabled()) Schedule();
}

void TimeoutQueue::Unlink(Entry& entry) {
  if (entry.prev_ != nullptr) {
    entry.prev_->next_ = entry.next_;
  } else {
    head_ = entry.next_;
  }
  if (entry.next_ != nullptr) {
    entry.next_->prev_ = entry.prev_;
  } else {
    tail_ = entry.prev_;
  }
  entry.prev_ = entry.next_ = nullptr;
  entry.queue_ = nullptr;
  // The timer may now fire early for a later head; OnTimer() simply re-schedules.
}

void TimeoutQueue::Schedule() {
  if (head_ == nullptr) {
    timer_->Disable();
    return;
  }
  MonotonicTime now = dispatcher_.ApproximateMonotonicTime();
  // Rounded up: a timer that fires before the head is due would only re-schedule.
  auto wait = std::chrono::ceil<std::chrono::milliseconds>(head_->deadline_ - now);
  timer_->Enable(std::max(wait, std::chrono::milliseconds(0)));
}

void TimeoutQueue::OnTimer() {
  MonotonicTime now = dispatcher_.ApproximateMonotonicTime();
  while (head_ != nullptr && head_->deadline_ <= now) {
    Entry* expired = head_;
    Unlink(*expired);
    expired->OnTimeout();  // May arm or destroy entries, including this one.
  }
  Schedule();
}

}  // namespace phoenix
