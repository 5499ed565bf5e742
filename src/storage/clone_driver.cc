#include "storage/clone_driver.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace argon::storage {

namespace {
Status read_write_copy(int src_fd, int dst_fd, uint64_t offset, uint64_t size) {
  char buf[1 << 16];
  while (offset < size) {
    ssize_t n = ::pread(src_fd, buf, sizeof buf, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(ErrorCode::kInternal, fmt::format("read failed: {}", std::strerror(errno)));
    }
    if (n == 0) break;  // file shrank while copying (live capture): WAL replay repairs it
    ssize_t off = 0;
    while (off < n) {
      ssize_t w = ::pwrite(dst_fd, buf + off, static_cast<size_t>(n - off),
                           static_cast<off_t>(offset + static_cast<uint64_t>(off)));
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail(ErrorCode::kInternal, fmt::format("write failed: {}", std::strerror(errno)));
      }
      off += w;
    }
    offset += static_cast<uint64_t>(n);
  }
  return {};
}
}  // namespace

Status CopyCloneDriver::clone_file(int src_fd, int dst_fd, uint64_t size) {
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::copy_file_range(src_fd, nullptr, dst_fd, nullptr, size - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP) {
        ::lseek(src_fd, 0, SEEK_SET);
        return read_write_copy(src_fd, dst_fd, done, size);
      }
      return fail(ErrorCode::kInternal,
                  fmt::format("copy_file_range failed: {}", std::strerror(errno)));
    }
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
  }
  return {};
}

Status ReflinkCloneDriver::clone_file(int src_fd, int dst_fd, uint64_t /*size*/) {
  if (::ioctl(dst_fd, FICLONE, src_fd) != 0) {
    return fail(ErrorCode::kInternal, fmt::format("FICLONE failed: {}", std::strerror(errno)));
  }
  return {};
}

bool reflink_supported(const std::filesystem::path& dir, std::string* why) {
  auto a = dir / ".reflink-probe-a";
  auto b = dir / ".reflink-probe-b";
  int fa = ::open(a.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fa < 0) {
    if (why)
      *why =
          fmt::format("cannot create a probe file in {}: {}", dir.string(), std::strerror(errno));
    return false;
  }
  const char data[4096] = {1};
  bool ok = ::write(fa, data, sizeof data) == static_cast<ssize_t>(sizeof data);
  int fb = ::open(b.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (ok && fb >= 0 && ::ioctl(fb, FICLONE, fa) == 0) {
    if (why) *why = fmt::format("FICLONE works on the filesystem of {}", dir.string());
  } else {
    ok = false;
    if (why) {
      *why = fmt::format("FICLONE is not supported on the filesystem of {} ({})", dir.string(),
                         std::strerror(errno));
    }
  }
  if (fb >= 0) ::close(fb);
  ::close(fa);
  ::unlink(a.c_str());
  ::unlink(b.c_str());
  return ok;
}

Result<std::unique_ptr<CloneDriver>> make_clone_driver(std::string_view kind,
                                                       const std::filesystem::path& dir,
                                                       std::string* reason) {
  std::string why;
  if (kind == "copy") {
    if (reason) *reason = "requested with --clone-driver copy";
    return std::make_unique<CopyCloneDriver>();
  }
  if (kind == "reflink") {
    if (!reflink_supported(dir, &why)) {
      return fail(ErrorCode::kBadRequest,
                  fmt::format("--clone-driver reflink: {}; use an XFS (reflink=1) or btrfs data "
                              "directory, or --clone-driver copy",
                              why));
    }
    if (reason) *reason = "requested with --clone-driver reflink; " + why;
    return std::make_unique<ReflinkCloneDriver>();
  }
  if (kind == "auto") {
    if (reflink_supported(dir, &why)) {
      if (reason) *reason = why;
      return std::make_unique<ReflinkCloneDriver>();
    }
    if (reason) *reason = why + "; falling back to copy";
    return std::make_unique<CopyCloneDriver>();
  }
  return fail(ErrorCode::kBadRequest,
              fmt::format("unknown clone driver '{}'; use auto, reflink or copy", kind));
}

}  // namespace argon::storage
