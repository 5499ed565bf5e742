#include "storage/page_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace argon::storage {
namespace {

namespace fs = std::filesystem;

struct Cached {
  fs::path rel;
  std::uint64_t bytes = 0;
};

class Fd {
 public:
  explicit Fd(const fs::path& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Calls `range(offset, length)` for each run of cached pages of `file`, found with mincore on a
// read-only mapping (which faults nothing in), until it returns false; returns the bytes seen.
// Memory: one byte per page of the file (PostgreSQL's files stop at 1 GB: 256 kB).
template <typename F>
std::uint64_t cached_ranges(const fs::path& file, F&& range) {
  Fd fd(file);
  struct stat st {};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
    return 0;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (map == MAP_FAILED) return 0;
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((size + page - 1) / page);
  std::uint64_t bytes = 0;
  if (::mincore(map, size, resident.data()) == 0) {
    for (std::uint64_t i = 0; i < resident.size();) {
      if (!(resident[i] & 1)) {
        ++i;
        continue;
      }
      std::uint64_t j = i;
      while (j < resident.size() && (resident[j] & 1)) ++j;
      bytes += (j - i) * page;
      if (!range(i * page, (j - i) * page)) break;
      i = j;
    }
  }
  ::munmap(map, size);
  return bytes;
}

}  // namespace

WarmStats warm_like(const fs::path& pgdata, const fs::path& like, std::uint64_t budget) {
  std::vector<Cached> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(pgdata, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(pgdata);
    if (it.depth() == 0 && rel == "pg_wal") {
      it.disable_recursion_pending();
      continue;
    }
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    const std::uint64_t bytes =
        cached_ranges(like / rel, [](std::uint64_t, std::uint64_t) { return true; });
    if (bytes > 0) files.push_back({rel, bytes});
  }
  std::stable_sort(files.begin(), files.end(),
                   [](const Cached& a, const Cached& b) { return a.bytes < b.bytes; });
  // The ranges are looked up again for the files the budget reaches, rather than kept for all.
  WarmStats stats;
  for (const auto& c : files) {
    if (budget == 0) break;
    Fd fd(pgdata / c.rel);
    if (fd.get() < 0) continue;
    bool asked = false;
    cached_ranges(like / c.rel, [&](std::uint64_t offset, std::uint64_t length) {
      length = std::min(length, budget);
      if (::posix_fadvise(fd.get(), static_cast<off_t>(offset), static_cast<off_t>(length),
                          POSIX_FADV_WILLNEED) != 0)
        return false;
      budget -= length;
      stats.bytes += length;
      asked = true;
      return budget > 0;
    });
    if (asked) ++stats.files;
  }
  return stats;
}

}  // namespace argon::storage
