// The verifiers the proxy has read, kept while the compute says no role changed since. A compute
// that argond started with argon_roles (src/compute/argon_roles) keeps a counter in its socket
// directory (compute::kRoleGenerationFile) that every committed CREATE, ALTER or DROP ROLE raises
// after the change is visible and before its client hears the commit. A verifier remembered with
// the counter's value from *before* it was read is current while the counter still has that value:
// a change that committed before a login arrived has raised it, so the login reads again. Checking
// costs a stat() and a load from a shared mapping, where a read costs a round trip to the compute.
// A compute without the file (no argon_roles, or stopped) is never cached for.
//
// Thread-safe: the I/O threads consult it for every login and HTTP query.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "proxy/compute_login.h"

namespace argon::proxy {

class RoleCache {
 public:
  // The counter of one compute's file at one moment; the file's identity names the postmaster.
  struct Stamp {
    dev_t dev = 0;
    ino_t ino = 0;
    std::uint64_t counter = 0;
    bool operator==(const Stamp&) const = default;
  };

  RoleCache() = default;
  RoleCache(const RoleCache&) = delete;
  RoleCache& operator=(const RoleCache&) = delete;
  ~RoleCache();

  // The compute's counter now; std::nullopt when it keeps none.
  std::optional<Stamp> stamp(const std::filesystem::path& socket_dir);
  // `role`'s remembered secret, when it was read under `now`.
  std::optional<RoleSecret> find(const std::filesystem::path& socket_dir, const std::string& role,
                                 const Stamp& now);
  // Remembers a secret read after `before` was taken. A role with an expiry time is not kept: its
  // answer changes with the clock.
  void remember(const std::filesystem::path& socket_dir, const std::string& role,
                const Stamp& before, const RoleSecret& secret);
  // Forgets computes whose file is gone or belongs to a newer postmaster.
  void sweep();
  std::size_t size() const;  // remembered roles, for tests

  // Per compute, at most this many roles are kept (a client can name any role it likes); past it
  // the compute's entries start over.
  static constexpr std::size_t kMaxRolesPerCompute = 1024;

 private:
  struct Mapping;
  std::shared_ptr<Mapping> mapping(const std::filesystem::path& socket_dir, const struct stat& st);

  mutable std::mutex mu_;
  std::map<std::filesystem::path, std::shared_ptr<Mapping>> computes_;
};

}  // namespace argon::proxy
