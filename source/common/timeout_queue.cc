#include "source/common/timeout_queue.h"

namespace phoenix {

void TimeoutQueue::Entry::Disarm() {
  if (queue_ != nullptr) queue_->Unlink(*this);
}

TimeoutQueue::TimeoutQueue(Dispatcher& dispatcher, std::chrono::milliseconds duration)
    : dispatcher_(dispatcher),
      duration_ms_(duration.count()),
      timer_(dispatcher.CreateTimer([this] { OnTimer(); })) {}

TimeoutQueue::~TimeoutQueue() {
  while (head_ != nullptr) Unlink(*head_);
}

void TimeoutQueue::Arm(Entry& entry) {
  entry.Disarm();
  entry.queue_ = this;
  entry.deadline_ms_ = dispatcher_.NowMs() + duration_ms_;
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
  uint64_t now = dispatcher_.NowMs();
  uint64_t wait = head_->deadline_ms_ > now ? head_->deadline_ms_ - now : 0;
  timer_->Enable(std::chrono::milliseconds(wait));
}

void TimeoutQueue::OnTimer() {
  uint64_t now = dispatcher_.NowMs();
  while (head_ != nullptr && head_->deadline_ms_ <= now) {
    Entry* expired = head_;
    Unlink(*expired);
    expired->OnTimeout();  // May arm or destroy entries, including this one.
  }
  Schedule();
}

}  // namespace phoenix
