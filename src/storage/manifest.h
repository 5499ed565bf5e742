// A snapshot's manifest: every regular file under its pgdata with size and CRC-32C, written when
// the snapshot is taken and checked before a restore uses it, so a snapshot damaged on disk is
// refused instead of restored. CRC-32C runs on the CPU's instruction (gigabytes per second), so a
// full check costs about one read of the data.
//
// Beside it, the files' stamps: size, inode, modification and change times, taken once the
// snapshot is read-only (before the manifest, which is written afterwards, off the snapshot's
// path; until then the stamps alone vouch for the files). Any write to a file, or a chmod that
// would allow one, moves its change time, which no process can set back. A check given the stamps
// reads only the files whose stamp moved (and the manifest still decides), so a restore of an
// untouched snapshot costs a stat per file. What stamps cannot see is the medium failing under an
// unchanged inode; a full check (no stamps) reads everything.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"

namespace argon::storage {

struct ManifestEntry {
  std::string path;  // relative to the manifest's root
  std::uint64_t size = 0;
  std::uint32_t crc32c = 0;
};

// Called before each read of a megabyte (a background reader waits in it while foreground work
// runs); true stops the reading with a kUnavailable error.
using Pace = std::function<bool()>;

// Reads every regular file under `root` (symlinks are recorded as size 0).
Result<std::vector<ManifestEntry>> build_manifest(const std::filesystem::path& root,
                                                  const Pace& pace = {});
// One line per file: "<crc32c hex> <size> <path>".
std::string manifest_text(const std::vector<ManifestEntry>& entries);
// manifest_text, written durably.
Status write_manifest(const std::filesystem::path& file, const std::vector<ManifestEntry>& entries);
// Checks `root` against the manifest in `file`: same files, sizes and checksums. The error names
// the first difference. With `stamps` (a file write_stamps wrote), a file whose stamp is unchanged
// is taken as checked and not read; a missing or unreadable stamps file means a full check.
Status verify_manifest(const std::filesystem::path& root, const std::filesystem::path& file,
                       const std::filesystem::path& stamps = {}, const Pace& pace = {});
// One line per regular file under `root`: "<size> <inode> <mtime ns> <ctime ns> <path>", durably.
Status write_stamps(const std::filesystem::path& root, const std::filesystem::path& file);
// Checks `root` against its stamps alone, reading no data: the same regular files, each with the
// stamp recorded. The error names the first difference. A file that got no stamp when they were
// taken cannot be vouched for: an error too, unless `unstamped_ok`.
Status verify_stamps(const std::filesystem::path& root, const std::filesystem::path& stamps,
                     bool unstamped_ok = false);

std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t size);

}  // namespace argon::storage
