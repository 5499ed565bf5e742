// One background thread that runs a job every `interval`, or sooner when woken, until stopped:
// what the sweeps and the snapshot checks each run on.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace argon::ops {

class PeriodicThread {
 public:
  ~PeriodicThread() { stop(); }

  // `run_now`: the first run comes at once instead of after the first interval.
  void start(std::chrono::milliseconds interval, std::function<void()> job, bool run_now = false) {
    std::lock_guard lock(mu_);
    stopping_ = false;
    woken_ = run_now;
    thread_ = std::thread([this, interval, job = std::move(job)] {
      std::unique_lock lock(mu_);
      while (!stopping_) {
        cv_.wait_for(lock, interval, [&] { return stopping_ || woken_; });
        if (stopping_) break;
        woken_ = false;
        lock.unlock();
        // A job that throws is a bug; it must not end argond (a thread's uncaught exception
        // does), and the next run tries again.
        try {
          job();
        } catch (const std::exception& e) {
          spdlog::error("background job failed: {}", e.what());
        }
        lock.lock();
      }
    });
  }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // The next run comes now (or right after the one under way).
  void wake() {
    {
      std::lock_guard lock(mu_);
      woken_ = true;
    }
    cv_.notify_all();
  }
  // For a long job to end early once stop() was called.
  bool stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  bool woken_ = false;     // guarded by mu_
  std::thread thread_;
};

}  // namespace argon::ops
