#include "storage/clone_driver.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

namespace {
// Copies [from, to) of src_fd to the same offsets of dst_fd; stops early if the source shrank.
Status copy_range(int src_fd, int dst_fd, uint64_t from, uint64_t to) {
  while (from < to) {
    loff_t in = static_cast<loff_t>(from), out = static_cast<loff_t>(from);
    ssize_t n = ::copy_file_range(src_fd, &in, dst_fd, &out, to - from, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)
        return read_write_copy(src_fd, dst_fd, from, to);
      return fail(ErrorCode::kInternal,
                  fmt::format("copy_file_range failed: {}", std::strerror(errno)));
    }
    if (n == 0) break;  // file shrank while copying (live capture): WAL replay repairs it
    from += static_cast<uint64_t>(n);
  }
  return {};
}
}  // namespace

// Only the source's data is copied: its holes (a settled snapshot's freed WAL pages) stay holes
// in the copy instead of becoming written zeros.
Status CopyCloneDriver::clone_file(int src_fd, int dst_fd, uint64_t size) {
  uint64_t at = 0;
  while (at < size) {
    off_t data = ::lseek(src_fd, static_cast<off_t>(at), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;      // nothing but a hole from here on
      data = static_cast<off_t>(at);  // a filesystem that cannot tell: copy it all
    }
    off_t hole = ::lseek(src_fd, data, SEEK_HOLE);
    if (hole < 0) hole = static_cast<off_t>(size);
    const uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), size);
    if (static_cast<uint64_t>(data) >= end) break;
    ARGON_RETURN_IF_ERROR(copy_range(src_fd, dst_fd, static_cast<uint64_t>(data), end));
    at = end;
  }
  // A trailing hole: the copy gets the same size (never more than the source has now).
  struct stat st {};
  if (::fstat(src_fd, &st) != 0)
    return fail(ErrorCode::kInternal, fmt::format("fstat failed: {}", std::strerror(errno)));
  const auto want = static_cast<off_t>(std::min<uint64_t>(size, static_cast<uint64_t>(st.st_size)));
  struct stat dst {};
  if (::fstat(dst_fd, &dst) == 0 && dst.st_size < want && ::ftruncate(dst_fd, want) != 0)
    return fail(ErrorCode::kInternal, fmt::format("ftruncate failed: {}", std::strerror(errno)));
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
