// Clones a directory tree file by file through a CloneDriver, keeping modes and (when running as
// root) giving every created entry to the Postgres OS user. Used for branch creation and snapshots.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>

#include "common/error.h"
#include "common/file_util.h"
#include "storage/clone_driver.h"

namespace argon::storage {

enum class CloneFilter { kInclude, kSkip, kEmptyDir };

struct CloneOptions {
  // Given a path relative to the source root; default includes everything.
  std::function<CloneFilter(const std::filesystem::path& rel, bool is_dir)> filter;
  std::optional<OsUser> owner;
  // During a live capture files may vanish between listing and opening: skip them (WAL replay
  // recreates what matters), as pg_basebackup does.
  bool tolerate_vanished = false;
  // Give the owner write permission on every created entry (a writable branch cloned from a
  // read-only snapshot).
  bool owner_writable = false;
};

struct CloneStats {
  uint64_t files = 0;
  uint64_t bytes = 0;
};

Result<CloneStats> clone_tree(CloneDriver& driver, const std::filesystem::path& src,
                              const std::filesystem::path& dst, const CloneOptions& options);

// Clones one regular file (dst must not exist). Returns bytes cloned. `add_mode` bits are added
// to the source's mode.
Result<uint64_t> clone_one_file(CloneDriver& driver, const std::filesystem::path& src,
                                const std::filesystem::path& dst,
                                const std::optional<OsUser>& owner, bool tolerate_vanished,
                                mode_t add_mode = 0);

}  // namespace argon::storage
