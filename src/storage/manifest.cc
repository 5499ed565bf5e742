#include "storage/manifest.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <nmmintrin.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "common/file_util.h"

namespace argon::storage {

namespace fs = std::filesystem;

__attribute__((target("sse4.2"))) std::uint32_t crc32c(std::uint32_t crc, const void* data,
                                                       std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t c = ~crc;
  while (size >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    size -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (size--) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}

namespace {

// `file`'s path below `root`, worked out from the names alone: fs::relative resolves them on disk
// and throws when a directory on the way is removed meanwhile (a snapshot deleted while read).
std::string relative_path(const fs::path& file, const fs::path& root) {
  return file.lexically_relative(root).string();
}

Result<ManifestEntry> checksum_file(const fs::path& root, const fs::path& file, const Pace& pace) {
  ManifestEntry e;
  e.path = relative_path(file, root);
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return fail(ErrorCode::kInternal,
                fmt::format("cannot read {}: {}", file.string(), std::strerror(errno)));
  std::vector<char> buf(1 << 20);
  for (;;) {
    if (pace && pace()) {
      ::close(fd);
      return fail(ErrorCode::kUnavailable, fmt::format("reading {} was stopped", file.string()));
    }
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return fail(ErrorCode::kInternal,
                  fmt::format("cannot read {}: {}", file.string(), std::strerror(err)));
    }
    if (n == 0) break;
    e.crc32c = crc32c(e.crc32c, buf.data(), static_cast<std::size_t>(n));
    e.size += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  return e;
}

}  // namespace

namespace {

// A file's stamp as write_stamps records it, from an lstat.
std::string stamp_of(const struct stat& st) {
  return fmt::format("{} {} {} {}", st.st_size, st.st_ino,
                     st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
                     st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec);
}

// path → stamp, from a stamps file; empty when there is none (a full check).
std::map<std::string, std::string> read_stamps(const fs::path& file) {
  std::map<std::string, std::string> out;
  if (file.empty()) return out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    // Four numbers, then the path (which may hold spaces).
    size_t at = 0;
    for (int i = 0; i < 4 && at != std::string::npos; ++i) at = line.find(' ', at + (i > 0));
    if (at == std::string::npos) return {};  // damaged: check everything
    out[line.substr(at + 1)] = line.substr(0, at);
  }
  return out;
}

// Every regular file under `root` (symlinks as size 0) with its checksum, except that a file whose
// stamp equals `trusted`'s is given `expected`'s entry without being read.
Result<std::vector<ManifestEntry>> scan(const fs::path& root,
                                        const std::map<std::string, std::string>& trusted,
                                        const std::map<std::string, ManifestEntry>& expected,
                                        const Pace& pace) {
  std::vector<ManifestEntry> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_symlink(ec)) {
      out.push_back({relative_path(it->path(), root), 0, 0});
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    if (!trusted.empty()) {
      const std::string rel = relative_path(it->path(), root);
      struct stat st {};
      auto t = trusted.find(rel);
      auto e = expected.find(rel);
      if (t != trusted.end() && e != expected.end() && ::lstat(it->path().c_str(), &st) == 0 &&
          stamp_of(st) == t->second) {
        out.push_back(e->second);
        continue;
      }
    }
    auto e = checksum_file(root, it->path(), pace);
    if (!e) return std::unexpected(e.error());
    out.push_back(std::move(*e));
  }
  if (ec)
    return fail(ErrorCode::kInternal,
                fmt::format("cannot list {}: {}", root.string(), ec.message()));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return out;
}

}  // namespace

Result<std::vector<ManifestEntry>> build_manifest(const fs::path& root, const Pace& pace) {
  return scan(root, {}, {}, pace);
}

Status write_stamps(const fs::path& root, const fs::path& file) {
  std::vector<std::pair<std::string, struct stat>> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    files.emplace_back(relative_path(it->path(), root), st);
  }
  if (ec)
    return fail(ErrorCode::kInternal,
                fmt::format("cannot list {}: {}", root.string(), ec.message()));
  // The kernel stamps change times from a coarse clock (a few milliseconds a tick), so a write in
  // the tick a stamp was taken in could leave it equal. Wait (a tick or two) until that clock has
  // moved past every recorded change time; a file it has not passed even then (a clock set back)
  // gets no stamp and is read at every check. A file system that keeps whole seconds only (every
  // nanosecond part zero) counts its times as a second wide, so its fresh files get none.
  auto ns = [](const timespec& t) { return t.tv_sec * 1'000'000'000LL + t.tv_nsec; };
  long long newest = 0, width = 1'000'000'000LL;
  for (const auto& [path, st] : files) {
    newest = std::max(newest, ns(st.st_ctim));
    if (st.st_ctim.tv_nsec != 0) width = 0;
  }
  timespec now{};
  for (int i = 0; i < 50; ++i) {
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (ns(now) > newest + width) break;
    ::usleep(1000);
  }
  std::string text;
  for (const auto& [path, st] : files) {
    if (ns(st.st_ctim) + width < ns(now)) text += fmt::format("{} {}\n", stamp_of(st), path);
  }
  return write_file_atomic(file, text, 0400);
}

Status verify_stamps(const fs::path& root, const fs::path& stamps, bool unstamped_ok) {
  std::error_code ec;
  if (!fs::exists(stamps, ec))
    return fail(ErrorCode::kConflict,
                fmt::format("the snapshot has neither manifest nor stamps ({})", stamps.string()));
  auto expected = read_stamps(stamps);
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const std::string rel = relative_path(it->path(), root);
    auto want = expected.find(rel);
    if (want == expected.end()) {
      if (unstamped_ok) continue;
      return fail(ErrorCode::kConflict,
                  fmt::format("the snapshot cannot be vouched for yet: {} has no stamp and its "
                              "checksums are not written yet; try again in a moment",
                              rel));
    }
    if (stamp_of(st) != want->second) {
      return fail(ErrorCode::kConflict,
                  fmt::format("the snapshot is damaged: {} was changed after it was taken", rel));
    }
    expected.erase(want);
  }
  if (ec)
    return fail(ErrorCode::kInternal,
                fmt::format("cannot list {}: {}", root.string(), ec.message()));
  if (!expected.empty()) {
    return fail(ErrorCode::kConflict,
                fmt::format("the snapshot is damaged: {} is missing", expected.begin()->first));
  }
  return {};
}

std::string manifest_text(const std::vector<ManifestEntry>& entries) {
  std::string text;
  for (const auto& e : entries) text += fmt::format("{:08x} {} {}\n", e.crc32c, e.size, e.path);
  return text;
}

Status write_manifest(const fs::path& file, const std::vector<ManifestEntry>& entries) {
  return write_file_atomic(file, manifest_text(entries), 0400);
}

Status verify_manifest(const fs::path& root, const fs::path& file, const fs::path& stamps,
                       const Pace& pace) {
  std::ifstream in(file);
  if (!in)
    return fail(ErrorCode::kConflict,
                fmt::format("the snapshot has no manifest ({})", file.string()));
  std::map<std::string, ManifestEntry> expected;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    ManifestEntry e;
    std::string crc;
    ls >> crc >> e.size;
    std::getline(ls >> std::ws, e.path);
    auto [end, err] = std::from_chars(crc.data(), crc.data() + crc.size(), e.crc32c, 16);
    if ((!ls && !ls.eof()) || err != std::errc() || end != crc.data() + crc.size() || crc.empty())
      return fail(ErrorCode::kConflict, "the snapshot's manifest is damaged");
    expected[e.path] = e;
  }
  auto actual = scan(root, read_stamps(stamps), expected, pace);
  if (!actual) return std::unexpected(actual.error());
  for (const auto& a : *actual) {
    auto it = expected.find(a.path);
    if (it == expected.end()) {
      return fail(
          ErrorCode::kConflict,
          fmt::format("the snapshot is damaged: {} was not in it when it was taken", a.path));
    }
    if (it->second.size != a.size || it->second.crc32c != a.crc32c) {
      return fail(
          ErrorCode::kConflict,
          fmt::format(
              "the snapshot is damaged: {} does not match its checksum ({} bytes, expected {})",
              a.path, a.size, it->second.size));
    }
    expected.erase(it);
  }
  if (!expected.empty()) {
    return fail(ErrorCode::kConflict,
                fmt::format("the snapshot is damaged: {} is missing", expected.begin()->first));
  }
  return {};
}

}  // namespace argon::storage
