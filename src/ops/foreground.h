// Operations a client waits for come first. While any operation runs (a snapshot, a restore, a
// wake: each is an API call or a connection waiting), the background readers of snapshot data,
// the checksum pass and the scrubs (ops/snapshot_checks.h), pause between two reads, so that
// their gigabytes of reading do not share the disk with a capture, a clone or a swap. They are
// not starved: a pause lasts at most `most_wait` (2 s), after which they read for `then_read`
// (0.5 s) before pausing again, so under a steady stream of operations they still move at about a
// fifth of their speed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

namespace argon::ops {

class Foreground {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Foreground(std::chrono::milliseconds most_wait = std::chrono::seconds(2),
                      std::chrono::milliseconds then_read = std::chrono::milliseconds(500))
      : most_wait_(most_wait), then_read_(then_read) {}

  // Counts one running operation for its lifetime.
  class Scope {
   public:
    explicit Scope(Foreground& f) : f_(&f) {
      std::lock_guard lock(f_->mu_);
      ++f_->running_;
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    ~Scope() {
      {
        std::lock_guard lock(f_->mu_);
        --f_->running_;
      }
      f_->cv_.notify_all();
    }

   private:
    Foreground* f_;
  };

  // For a background reader, between two reads: returns at once when no operation runs (or
  // within a read window); otherwise when none runs any more, when the wait reached most_wait
  // (then a then_read window opens), or when `stop` says the reader should give up, which it
  // then returns: false to go on reading, true to stop.
  bool pace(const std::function<bool()>& stop = {}) {
    std::unique_lock lock(mu_);
    const auto now = Clock::now();
    if (running_ == 0 || now < read_until_) return stop && stop();
    const auto give_up = now + most_wait_;
    while (running_ > 0 && Clock::now() < give_up) {
      if (stop && stop()) return true;
      // Short slices, so a stop is seen soon.
      cv_.wait_until(lock, std::min(give_up, Clock::now() + std::chrono::milliseconds(50)));
    }
    if (running_ > 0) read_until_ = Clock::now() + then_read_;
    return stop && stop();
  }

  int running() const {
    std::lock_guard lock(mu_);
    return running_;
  }

 private:
  const std::chrono::milliseconds most_wait_, then_read_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;               // guarded by mu_
  Clock::time_point read_until_;  // guarded by mu_: a window in which pace() does not wait
};

}  // namespace argon::ops
