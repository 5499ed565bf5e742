// The snapshots' checksums, off every operation's path, on one thread of their own. A snapshot is
// sealed (read-only, stamped) by its operation; this thread then reads it once to write its
// manifest (every file's CRC-32C), and again in full every `scrub_interval` (a scrub: the medium
// returning other bytes under unchanged stamps). A difference marks the snapshot damaged, which a
// restore then refuses with the file's name. Woken when a snapshot operation finishes, and at
// least once a minute; a pass over thousands of snapshots is one stat each when nothing is due.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "storage/storage.h"

namespace argon::ops {

class SnapshotChecks {
 public:
  // scrub_interval zero: snapshots are read once, for their manifest, and never again.
  SnapshotChecks(storage::Storage& storage, std::chrono::seconds scrub_interval)
      : storage_(storage), scrub_interval_(scrub_interval) {}
  ~SnapshotChecks();

  void start();
  void stop();
  // A snapshot may have been sealed: look now.
  void notify();
  // One pass, on the caller's thread: what start() runs (tests call it directly).
  void pass();

 private:
  void loop();

  storage::Storage& storage_;
  const std::chrono::seconds scrub_interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  bool woken_ = false;     // guarded by mu_
  std::thread thread_;
};

}  // namespace argon::ops
