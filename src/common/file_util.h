// Small POSIX file helpers with the durability rules of ARCHITECTURE.md §3: anything that must
// survive a crash is written to a temp file, fsynced, renamed into place, and the directory
// fsynced.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace argon {

namespace fs = std::filesystem;

Result<std::string> read_file(const fs::path& path);
// Writes `data` to `path` atomically and durably with the given permission bits.
Status write_file_atomic(const fs::path& path, std::string_view data, mode_t mode = 0600);
Status fsync_path(const fs::path& path);  // file or directory
// Durable rename: rename(2) then fsync of the destination's parent directory.
Status rename_durable(const fs::path& from, const fs::path& to);
// Durable atomic exchange of two paths on one filesystem: renameat2(RENAME_EXCHANGE), then fsync
// of their (common) parent directory.
Status exchange_durable(const fs::path& a, const fs::path& b);
// Removes a tree even where read-only directories (snapshots) would stop a plain remove_all.
Status remove_tree(const fs::path& path);
Status make_dir(const fs::path& path, mode_t mode);

// An OS account that Postgres runs as.
struct OsUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};
Result<OsUser> lookup_user(std::string_view name);
OsUser current_user();
// chown -R (no symlink following).
Status chown_tree(const fs::path& path, uid_t uid, gid_t gid);

}  // namespace argon
