#include "ops/snapshot_checks.h"

#include <spdlog/spdlog.h>

namespace argon::ops {

using namespace std::chrono_literals;

SnapshotChecks::~SnapshotChecks() { stop(); }

void SnapshotChecks::start() {
  std::lock_guard lock(mu_);
  stopping_ = false;
  woken_ = true;  // a first pass at start: snapshots sealed before a crash or restart
  thread_ = std::thread([this] { loop(); });
}

void SnapshotChecks::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SnapshotChecks::notify() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void SnapshotChecks::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, 60s, [&] { return stopping_ || woken_; });
    if (stopping_) break;
    woken_ = false;
    lock.unlock();
    pass();
    lock.lock();
  }
}

void SnapshotChecks::pass() {
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const auto& id : storage_.list_snapshot_dirs()) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    // Not sealed yet: its operation is still settling it.
    if (!storage_.snapshot_sealed(id) || storage_.snapshot_damaged(id)) continue;
    const auto checked = storage_.snapshot_checked_at(id);
    const bool has_manifest = std::filesystem::exists(storage_.snapshot_manifest(id));
    Status st;
    if (!has_manifest) {
      const auto began = std::chrono::steady_clock::now();
      st = storage_.checksum_snapshot(id);
      if (st && std::filesystem::exists(storage_.snapshot_manifest(id)))
        spdlog::info("snapshot {}: checksums written in {} ms", id,
                     std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - began)
                         .count());
    } else if (scrub_interval_.count() > 0 &&
               (!checked ||
                now_ms - *checked >=
                    std::chrono::duration_cast<std::chrono::milliseconds>(scrub_interval_)
                        .count())) {
      st = storage_.scrub_snapshot(id);
      if (st && !storage_.snapshot_damaged(id))
        spdlog::info("snapshot {}: read in full, matches its checksums", id);
    }
    // Tried again at the next pass.
    if (!st) spdlog::error("snapshot {}: checking it failed: {}", id, st.error().message);
  }
}

}  // namespace argon::ops
