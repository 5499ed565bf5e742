// A sparse filesystem image, loop-mounted for the lifetime of the object (needs root): XFS with
// reflink=1 for the reflink clone driver's tests, ext4 (no reflink) where the benchmark measures
// a real copy.
#pragma once

#include <cstdint>
#include <filesystem>

namespace argon::testing {

enum class LoopFsType { kXfsReflink, kExt4 };

class LoopFilesystem {
 public:
  explicit LoopFilesystem(LoopFsType type = LoopFsType::kXfsReflink,
                          std::uint64_t size_bytes = std::uint64_t{1} << 30);
  ~LoopFilesystem();
  LoopFilesystem(const LoopFilesystem&) = delete;
  LoopFilesystem& operator=(const LoopFilesystem&) = delete;

  bool ok() const { return ok_; }
  const std::filesystem::path& mount_point() const { return mnt_; }

 private:
  std::filesystem::path dir_, image_, mnt_;
  bool ok_ = false;
};

// True when CI=true is set: tests that need root or a loop device must run there, not skip.
bool running_under_ci();

}  // namespace argon::testing
