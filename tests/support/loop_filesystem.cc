#include "loop_filesystem.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace argon::testing {

namespace fs = std::filesystem;

namespace {
bool run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }
}  // namespace

LoopFilesystem::LoopFilesystem(LoopFsType type, std::uint64_t size_bytes) {
  std::string tmpl = (fs::temp_directory_path() / "argon-loopfs-XXXXXX").string();
  dir_ = ::mkdtemp(tmpl.data());
  ::chmod(dir_.c_str(), 0711);  // the Postgres user must reach the data directory inside
  image_ = dir_ / "fs.img";
  mnt_ = dir_ / "mnt";
  fs::create_directories(mnt_);
  const char* mkfs =
      type == LoopFsType::kXfsReflink ? "mkfs.xfs -q -m reflink=1" : "mkfs.ext4 -q -F";
  ok_ = run(fmt::format("truncate -s {} {} && {} {} && mount -o loop {} {}", size_bytes,
                        image_.string(), mkfs, image_.string(), image_.string(), mnt_.string()));
  if (ok_) ::chmod(mnt_.c_str(), 0711);
}

LoopFilesystem::~LoopFilesystem() {
  if (ok_) run(fmt::format("umount -l {}", mnt_.string()));
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

bool running_under_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

}  // namespace argon::testing
