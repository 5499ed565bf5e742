#include "proxy/role_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute/endpoint_access.h"

namespace argon::proxy {

namespace fs = std::filesystem;

namespace {
// argon_roles.c's ArgonRoleGeneration: "ARGONRG1", then the counter.
constexpr std::uint64_t kMagic = 0x3147524e4f475241ULL;
struct Generation {
  std::uint64_t magic;
  std::uint64_t counter;
};

fs::path file_of(const fs::path& socket_dir) {
  return socket_dir / std::string(compute::kRoleGenerationFile);
}
}  // namespace

struct RoleCache::Mapping {
  dev_t dev = 0;
  ino_t ino = 0;
  const Generation* generation = nullptr;  // mapped read-only, shared with the postmaster
  std::map<std::string, std::pair<std::uint64_t, RoleSecret>> roles;  // counter it was read under

  ~Mapping() {
    if (generation) ::munmap(const_cast<Generation*>(generation), sizeof(Generation));
  }
  std::uint64_t counter() const { return __atomic_load_n(&generation->counter, __ATOMIC_ACQUIRE); }
};

RoleCache::~RoleCache() = default;

std::shared_ptr<RoleCache::Mapping> RoleCache::mapping(const fs::path& socket_dir,
                                                       const struct stat& st) {
  auto& m = computes_[socket_dir];
  if (m && m->dev == st.st_dev && m->ino == st.st_ino) return m;
  m = nullptr;  // a new postmaster (or none yet mapped): nothing remembered applies
  const int fd = ::open(file_of(socket_dir).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  struct stat opened {};
  void* p = MAP_FAILED;
  if (::fstat(fd, &opened) == 0 && opened.st_size >= static_cast<off_t>(sizeof(Generation))) {
    p = ::mmap(nullptr, sizeof(Generation), PROT_READ, MAP_SHARED, fd, 0);
  }
  ::close(fd);
  if (p == MAP_FAILED) return nullptr;
  auto fresh = std::make_shared<Mapping>();
  fresh->dev = opened.st_dev;
  fresh->ino = opened.st_ino;
  fresh->generation = static_cast<const Generation*>(p);
  if (fresh->generation->magic != kMagic) return nullptr;
  m = fresh;
  return m;
}

std::optional<RoleCache::Stamp> RoleCache::stamp(const fs::path& socket_dir) {
  struct stat st {};
  const bool present = ::stat(file_of(socket_dir).c_str(), &st) == 0;
  std::lock_guard lock(mu_);
  if (!present) {
    computes_.erase(socket_dir);
    return std::nullopt;
  }
  auto m = mapping(socket_dir, st);
  if (!m) {
    computes_.erase(socket_dir);
    return std::nullopt;
  }
  return Stamp{m->dev, m->ino, m->counter()};
}

std::optional<RoleSecret> RoleCache::find(const fs::path& socket_dir, const std::string& role,
                                          const Stamp& now) {
  std::lock_guard lock(mu_);
  auto it = computes_.find(socket_dir);
  if (it == computes_.end() || it->second->dev != now.dev || it->second->ino != now.ino) {
    return std::nullopt;
  }
  auto r = it->second->roles.find(role);
  if (r == it->second->roles.end() || r->second.first != now.counter) return std::nullopt;
  return r->second.second;
}

void RoleCache::remember(const fs::path& socket_dir, const std::string& role, const Stamp& before,
                         const RoleSecret& secret) {
  if (secret.expires) return;
  std::lock_guard lock(mu_);
  auto it = computes_.find(socket_dir);
  if (it == computes_.end() || it->second->dev != before.dev || it->second->ino != before.ino) {
    return;
  }
  auto& roles = it->second->roles;
  if (roles.size() >= kMaxRolesPerCompute && !roles.contains(role)) roles.clear();
  roles.insert_or_assign(role, std::pair{before.counter, secret});
}

void RoleCache::sweep() {
  std::lock_guard lock(mu_);
  for (auto it = computes_.begin(); it != computes_.end();) {
    struct stat st {};
    const bool same = ::stat(file_of(it->first).c_str(), &st) == 0 && it->second &&
                      st.st_dev == it->second->dev && st.st_ino == it->second->ino;
    it = same ? std::next(it) : computes_.erase(it);
  }
}

std::size_t RoleCache::size() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [dir, m] : computes_) n += m ? m->roles.size() : 0;
  return n;
}

}  // namespace argon::proxy
