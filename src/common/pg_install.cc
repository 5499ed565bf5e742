#include "common/pg_install.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>

namespace argon {

namespace fs = std::filesystem;

namespace {
// Runs `<bindir>/postgres --version` ("postgres (PostgreSQL) 15.18 (Debian ...)").
std::optional<PgInstall> probe(const fs::path& bindir) {
  fs::path postgres = bindir / "postgres";
  std::error_code ec;
  if (!fs::exists(postgres, ec) || !fs::exists(bindir / "initdb", ec)) return std::nullopt;
  std::string cmd = fmt::format("'{}' --version 2>/dev/null", postgres.string());
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), ::pclose);
  if (!p) return std::nullopt;
  char buf[256] = {};
  if (!std::fgets(buf, sizeof buf, p.get())) return std::nullopt;
  std::string line(buf);
  auto pos = line.find(") ");
  if (pos == std::string::npos) return std::nullopt;
  std::string version = line.substr(pos + 2);
  version = version.substr(0, version.find_first_of(" \n"));
  int major = std::atoi(version.c_str());
  if (major < 14) return std::nullopt;  // pg_backup_start and friends need 15; 14 via old names
  return PgInstall{major, version, fs::canonical(bindir, ec)};
}
}  // namespace

Result<PgInstalls> PgInstalls::discover(const fs::path& bindir) {
  PgInstalls out;
  if (!bindir.empty()) {
    auto inst = probe(bindir);
    if (!inst) {
      return fail(ErrorCode::kBadRequest,
                  fmt::format("--pg-bindir {}: no usable PostgreSQL (14 or newer) server there",
                              bindir.string()));
    }
    out.installs_.push_back(*inst);
    return out;
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    if (auto inst = probe(entry.path() / "bin")) out.installs_.push_back(*inst);
  }
  if (out.installs_.empty()) {
    return fail(ErrorCode::kBadRequest,
                "no PostgreSQL server found under /usr/lib/postgresql; install postgresql-15 "
                "or pass --pg-bindir");
  }
  std::sort(out.installs_.begin(), out.installs_.end(),
            [](const PgInstall& a, const PgInstall& b) { return a.major < b.major; });
  return out;
}

void PgInstalls::set_role_library(int major, fs::path library) {
  for (auto& i : installs_) {
    if (i.major == major) i.role_library = library;
  }
}

const PgInstall* PgInstalls::find(int major) const {
  for (const auto& i : installs_) {
    if (i.major == major) return &i;
  }
  return nullptr;
}

std::string PgInstalls::majors_list() const {
  std::string out;
  for (const auto& i : installs_) out += (out.empty() ? "" : ", ") + std::to_string(i.major);
  return out;
}

}  // namespace argon
