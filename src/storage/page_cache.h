// Carrying the page cache over to a new copy of a cluster. The kernel caches pages per file, so a
// fresh clone (a reflink shares the blocks, not the cached pages) starts cold: the first queries
// on a restored compute read its catalogs and tables from the disk, and on a busy disk that is
// most of the restore's outage. Before the new compute serves, argond asks the kernel to read
// ahead, in each of the new cluster's files, the ranges that are cached in the same file of the
// cluster it replaces: what the serving compute had hot is hot again when the clients arrive.
#pragma once

#include <cstdint>
#include <filesystem>

namespace argon::storage {

struct WarmStats {
  std::uint64_t files = 0;  // files with at least one range asked for
  std::uint64_t bytes = 0;  // bytes asked for
};

// For every regular file under `pgdata` except `pg_wal`, the same relative path under `like` is
// looked up and its cached pages found (mincore); those ranges of the file under `pgdata` are
// given to the kernel to read ahead (POSIX_FADV_WILLNEED, which returns before the reads end).
// Files with fewer cached bytes go first (catalogs, small tables: what a first query reads), up
// to `budget` bytes in all, so a large cached table cannot keep the disk busy through the swap.
// Best effort: a file that cannot be opened or mapped is passed over.
WarmStats warm_like(const std::filesystem::path& pgdata, const std::filesystem::path& like,
                    std::uint64_t budget);

}  // namespace argon::storage
