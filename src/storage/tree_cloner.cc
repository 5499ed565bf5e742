#include "storage/tree_cloner.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

namespace argon::storage {

namespace fs = std::filesystem;

namespace {
Error io_error(std::string_view what, const fs::path& p, int err) {
  ErrorCode code =
      (err == ENOSPC || err == EDQUOT) ? ErrorCode::kUnavailable : ErrorCode::kInternal;
  return Error(code, fmt::format("{} {}: {}", what, p.string(), std::strerror(err)));
}

Status own(const fs::path& p, const std::optional<OsUser>& owner) {
  if (owner && ::geteuid() == 0 && ::lchown(p.c_str(), owner->uid, owner->gid) != 0) {
    return std::unexpected(io_error("chown", p, errno));
  }
  return {};
}

Status make_like(const fs::path& dst, mode_t mode, const std::optional<OsUser>& owner) {
  if (::mkdir(dst.c_str(), mode & 07777) != 0 && errno != EEXIST) {
    return std::unexpected(io_error("mkdir", dst, errno));
  }
  ::chmod(dst.c_str(), mode & 07777);
  return own(dst, owner);
}
}  // namespace

Result<uint64_t> clone_one_file(CloneDriver& driver, const fs::path& src, const fs::path& dst,
                                const std::optional<OsUser>& owner, bool tolerate_vanished,
                                mode_t add_mode) {
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (in < 0) {
    if (tolerate_vanished && errno == ENOENT) return 0;
    return std::unexpected(io_error("open", src, errno));
  }
  struct stat st {};
  if (::fstat(in, &st) != 0) {
    int err = errno;
    ::close(in);
    return std::unexpected(io_error("stat", src, err));
  }
  int out =
      ::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (st.st_mode | add_mode) & 07777);
  if (out < 0) {
    int err = errno;
    ::close(in);
    return std::unexpected(io_error("create", dst, err));
  }
  auto st_clone = driver.clone_file(in, out, static_cast<uint64_t>(st.st_size));
  if (st_clone) st_clone = own(dst, owner);
  ::close(in);
  if (::close(out) != 0 && st_clone) st_clone = std::unexpected(io_error("close", dst, errno));
  if (!st_clone) {
    Error e = st_clone.error();
    e.message = fmt::format("cloning {}: {}", src.string(), e.message);
    if (e.message.find("No space left") != std::string::npos) e.code = ErrorCode::kUnavailable;
    return std::unexpected(e);
  }
  return static_cast<uint64_t>(st.st_size);
}

namespace {

// The regular files of a tree, cloned by a few threads at once: each file is a handful of system
// calls that mostly wait on the filesystem (its journal for a reflink, the disk for a copy), so
// they overlap well. The first error stops the rest and is returned.
constexpr std::size_t kCloneThreads = 4;

struct FileJob {
  fs::path src, dst;
};

Status clone_files(CloneDriver& driver, const std::vector<FileJob>& jobs,
                   const CloneOptions& options, mode_t file_add, CloneStats& stats) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::atomic<uint64_t> files{0}, bytes{0};
  std::mutex mu;
  std::optional<Error> first_error;  // guarded by mu
  auto work = [&] {
    for (std::size_t i = next++; i < jobs.size() && !failed; i = next++) {
      auto n = clone_one_file(driver, jobs[i].src, jobs[i].dst, options.owner,
                              options.tolerate_vanished, file_add);
      if (!n) {
        std::lock_guard lock(mu);
        if (!first_error) first_error = n.error();
        failed = true;
        return;
      }
      ++files;
      bytes += *n;
    }
  };
  {
    std::vector<std::jthread> helpers;
    for (std::size_t t = 1; t < std::min(kCloneThreads, jobs.size()); ++t) {
      try {
        helpers.emplace_back(work);
      } catch (const std::system_error&) {
        break;  // no thread to be had: the ones there are (this one at least) do the work
      }
    }
    work();
  }  // joined
  if (first_error) return std::unexpected(*first_error);
  stats.files += files;
  stats.bytes += bytes;
  return {};
}

}  // namespace

Result<CloneStats> clone_tree(CloneDriver& driver, const fs::path& src, const fs::path& dst,
                              const CloneOptions& options) {
  CloneStats stats;
  std::vector<FileJob> jobs;
  struct stat root {};
  if (::stat(src.c_str(), &root) != 0) return std::unexpected(io_error("stat", src, errno));
  const mode_t dir_add = options.owner_writable ? S_IRWXU : 0;
  const mode_t file_add = options.owner_writable ? S_IRUSR | S_IWUSR : 0;
  if (auto st = make_like(dst, root.st_mode | dir_add, options.owner); !st)
    return std::unexpected(st.error());

  std::error_code ec;
  fs::recursive_directory_iterator it(src, fs::directory_options::none, ec);
  if (ec)
    return fail(ErrorCode::kInternal,
                fmt::format("cannot read {}: {}", src.string(), ec.message()));
  for (; it != fs::end(it); it.increment(ec)) {
    if (ec) {
      if (options.tolerate_vanished && ec == std::errc::no_such_file_or_directory) {
        ec.clear();
        continue;
      }
      return fail(ErrorCode::kInternal,
                  fmt::format("cannot walk {}: {}", src.string(), ec.message()));
    }
    const fs::path& path = it->path();
    fs::path rel = path.lexically_relative(src);
    fs::path target = dst / rel;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      if (options.tolerate_vanished && errno == ENOENT) continue;
      return std::unexpected(io_error("stat", path, errno));
    }
    const bool is_dir = S_ISDIR(st.st_mode);
    CloneFilter f = options.filter ? options.filter(rel, is_dir) : CloneFilter::kInclude;
    if (f == CloneFilter::kSkip) {
      if (is_dir) it.disable_recursion_pending();
      continue;
    }
    if (is_dir) {
      if (auto s = make_like(target, st.st_mode | dir_add, options.owner); !s)
        return std::unexpected(s.error());
      if (f == CloneFilter::kEmptyDir) it.disable_recursion_pending();
    } else if (S_ISLNK(st.st_mode)) {
      std::string link(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(path.c_str(), link.data(), link.size());
      if (n < 0) return std::unexpected(io_error("readlink", path, errno));
      link.resize(static_cast<size_t>(n));
      if (::symlink(link.c_str(), target.c_str()) != 0) {
        return std::unexpected(io_error("symlink", target, errno));
      }
      if (auto s = own(target, options.owner); !s) return std::unexpected(s.error());
    } else if (S_ISREG(st.st_mode)) {
      jobs.push_back({path, std::move(target)});
    }
    // Sockets, fifos and devices never belong in a data directory: skipped.
  }
  if (auto st = clone_files(driver, jobs, options, file_add, stats); !st)
    return std::unexpected(st.error());
  return stats;
}

}  // namespace argon::storage
