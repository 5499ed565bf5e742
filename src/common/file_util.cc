#include "common/file_util.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace argon {

namespace {
Error sys_error(std::string_view what, const fs::path& path, int err) {
  return Error(ErrorCode::kInternal,
               fmt::format("{} failed for {}: {}", what, path.string(), std::strerror(err)));
}
}  // namespace

Result<std::string> read_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(sys_error("open", path, errno));
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return std::unexpected(sys_error("read", path, err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(sys_error("open", path, errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return std::unexpected(sys_error("fsync", path, err));
  return {};
}

Status rename_durable(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    return std::unexpected(sys_error("rename", from, errno));
  return fsync_path(to.parent_path());
}

Status exchange_durable(const fs::path& a, const fs::path& b) {
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0)
    return std::unexpected(sys_error(fmt::format("exchange with {}", b.string()), a, errno));
  return fsync_path(b.parent_path());
}

Status write_file_atomic(const fs::path& path, std::string_view data, mode_t mode) {
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return std::unexpected(sys_error("open", tmp, errno));
  ::fchmod(fd, mode);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return std::unexpected(sys_error("write", tmp, err));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return std::unexpected(sys_error("fsync", tmp, err));
  }
  ::close(fd);
  return rename_durable(tmp, path);
}

Status remove_tree(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return {};
  // Snapshot trees are made read-only; give the owner write permission back on every directory
  // first.
  if (fs::is_directory(fs::symlink_status(path, ec))) {
    ::chmod(path.c_str(), 0700);
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    }
  }
  fs::remove_all(path, ec);
  if (ec) {
    return fail(ErrorCode::kInternal,
                fmt::format("cannot remove {}: {}", path.string(), ec.message()));
  }
  return {};
}

Status make_dir(const fs::path& path, mode_t mode) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) {
    return fail(ErrorCode::kInternal,
                fmt::format("cannot create {}: {}", path.string(), ec.message()));
  }
  if (::chmod(path.c_str(), mode) != 0) return std::unexpected(sys_error("chmod", path, errno));
  return {};
}

Result<OsUser> lookup_user(std::string_view name) {
  std::string n(name);
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* result = nullptr;
  int rc = ::getpwnam_r(n.c_str(), &pw, buf.data(), buf.size(), &result);
  if (rc != 0 || result == nullptr) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("OS user '{}' does not exist; create it or pass --pg-user", n));
  }
  return OsUser{n, pw.pw_uid, pw.pw_gid};
}

OsUser current_user() {
  OsUser u;
  u.uid = ::geteuid();
  u.gid = ::getegid();
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* result = nullptr;
  if (::getpwuid_r(u.uid, &pw, buf.data(), buf.size(), &result) == 0 && result) u.name = pw.pw_name;
  return u;
}

Status chown_tree(const fs::path& path, uid_t uid, gid_t gid) {
  if (::lchown(path.c_str(), uid, gid) != 0)
    return std::unexpected(sys_error("chown", path, errno));
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (::lchown(it->path().c_str(), uid, gid) != 0) {
      return std::unexpected(sys_error("chown", it->path(), errno));
    }
  }
  if (ec)
    return fail(ErrorCode::kInternal,
                fmt::format("cannot walk {}: {}", path.string(), ec.message()));
  return {};
}

}  // namespace argon
