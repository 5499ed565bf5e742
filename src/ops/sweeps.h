// The engine's periodic sweeps, on one thread every `expiry_interval`: expired branches and
// snapshots are deleted (through the planner, as a request would), branches a finalized restore
// left '(old)' go after the retention, and endpoints without connections for their
// suspend_timeout_seconds are suspended (last_active is kept current meanwhile).
#pragma once

#include <functional>

#include "ops/action_env.h"
#include "ops/periodic_thread.h"
#include "ops/planner.h"

namespace argon::ops {

// suspend_timeout_seconds = 0 means this (Neon's default).
inline constexpr int64_t kDefaultSuspendTimeoutSeconds = 300;

class Sweeps {
 public:
  Sweeps(ActionEnv& env, const Planner& planner, std::function<void()> notify)
      : env_(env), planner_(planner), notify_(std::move(notify)) {}
  void start();
  void stop();

 private:
  void sweep();
  // Expired branches and snapshots, and '(old)' branches past the retention; returns how many.
  Result<size_t> delete_expired(catalog::Tx& tx);
  Result<size_t> delete_old_branches(catalog::Tx& tx, int64_t now);
  void autosuspend();

  ActionEnv& env_;
  const Planner& planner_;
  const std::function<void()> notify_;
  PeriodicThread thread_;
};

}  // namespace argon::ops
