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

struct Range {
  std::uint64_t offset = 0, length = 0;
};

struct Cached {
  fs::path rel;
  std::vector<Range> ranges;
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

// The cached ranges of one file, from mincore on a read-only mapping (which faults nothing in).
Cached cached_ranges(const fs::path& file, fs::path rel) {
  Cached out{std::move(rel), {}, 0};
  Fd fd(file);
  struct stat st {};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
    return out;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (map == MAP_FAILED) return out;
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((size + page - 1) / page);
  if (::mincore(map, size, resident.data()) == 0) {
    for (std::uint64_t i = 0; i < resident.size(); ++i) {
      if (!(resident[i] & 1)) continue;
      const std::uint64_t offset = i * page;
      if (!out.ranges.empty() && out.ranges.back().offset + out.ranges.back().length == offset) {
        out.ranges.back().length += page;
      } else {
        out.ranges.push_back({offset, page});
      }
      out.bytes += page;
    }
  }
  ::munmap(map, size);
  return out;
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
    Cached c = cached_ranges(like / rel, rel);
    if (c.bytes > 0) files.push_back(std::move(c));
  }
  std::stable_sort(files.begin(), files.end(),
                   [](const Cached& a, const Cached& b) { return a.bytes < b.bytes; });
  WarmStats stats;
  for (const auto& c : files) {
    if (budget == 0) break;
    Fd fd(pgdata / c.rel);
    if (fd.get() < 0) continue;
    bool asked = false;
    for (const auto& r : c.ranges) {
      if (budget == 0) break;
      const std::uint64_t length = std::min(r.length, budget);
      if (::posix_fadvise(fd.get(), static_cast<off_t>(r.offset), static_cast<off_t>(length),
                          POSIX_FADV_WILLNEED) != 0)
        break;
      budget -= length;
      stats.bytes += length;
      asked = true;
    }
    if (asked) ++stats.files;
  }
  return stats;
}

}  // namespace argon::storage
