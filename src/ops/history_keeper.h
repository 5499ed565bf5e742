// The branches' point-in-time history off every operation's path, on a thread of its own, every
// `EngineOptions::history_interval`:
// - Base images: a running compute whose WAL has grown by `history_image_wal_bytes` since its
//   branch's newest image (by default 64 MB on reflink and 1 GB on the copy driver, where an image
//   is a whole copy) gets a new image (a backup capture, storage::Storage::take_image). A recovery
//   then replays at most about that much WAL, and the archive between images stays that size. A
//   branch with no image (made before history, or history turned on since) gets one at once.
// - Pruning: each branch keeps the newest image complete by now minus its project's
//   history_retention_seconds, every newer one, and the archived WAL from where that image starts
//   replaying; the rest goes (storage::Storage::prune_history). History off: all of it goes.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "ops/action_env.h"
#include "ops/periodic_thread.h"

namespace argon::ops {

class HistoryKeeper {
 public:
  explicit HistoryKeeper(ActionEnv& env) : env_(env) {}

  void start();
  void stop();
  // One pass over every branch, on the caller's thread (tests call it directly).
  void pass();

 private:
  struct Branch {
    std::string id;
    int pg_major = 0;
    int64_t retention_seconds = 0;
  };
  void keep(const Branch& b);
  // Whether the running compute's WAL has grown enough since the newest image to take another.
  Result<bool> image_due(const Branch& b, const PgInstall& pg, PgConn& admin);

  ActionEnv& env_;
  // The consistency point of images already read (pg_controldata runs once per image).
  std::mutex points_mu_;
  std::map<std::string, storage::ImagePoint> points_;  // by image directory; guarded by points_mu_
  PeriodicThread thread_;  // last: stopped before the members its job uses go
};

}  // namespace argon::ops
