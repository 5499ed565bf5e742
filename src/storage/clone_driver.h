// How a file's contents are copied into a new data directory. `reflink` shares blocks
// (copy-on-write, FICLONE: XFS with reflink=1, btrfs); `copy` is portable (copy_file_range).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"

namespace argon::storage {

class CloneDriver {
 public:
  virtual ~CloneDriver() = default;
  virtual std::string_view name() const = 0;
  // Copies `size` bytes of src_fd into the empty dst_fd.
  virtual Status clone_file(int src_fd, int dst_fd, uint64_t size) = 0;
};

class CopyCloneDriver final : public CloneDriver {
 public:
  std::string_view name() const override { return "copy"; }
  Status clone_file(int src_fd, int dst_fd, uint64_t size) override;
};

class ReflinkCloneDriver final : public CloneDriver {
 public:
  std::string_view name() const override { return "reflink"; }
  Status clone_file(int src_fd, int dst_fd, uint64_t size) override;
};

// True when FICLONE works inside `dir`; otherwise `why` says what failed.
bool reflink_supported(const std::filesystem::path& dir, std::string* why);

// kind: "auto" | "reflink" | "copy". For auto, `reason` explains the choice (logged by the caller).
// Asking for reflink where it does not work is an error that says why.
Result<std::unique_ptr<CloneDriver>> make_clone_driver(std::string_view kind,
                                                       const std::filesystem::path& dir,
                                                       std::string* reason);

}  // namespace argon::storage
