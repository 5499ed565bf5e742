// The PostgreSQL server installations argond can run: one per major version, found under
// /usr/lib/postgresql/<major>/bin (Debian layout) or given with --pg-bindir.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace argon {

struct PgInstall {
  int major = 0;
  std::string version;  // e.g. "15.18"
  std::filesystem::path bindir;
  // Argon's argon_roles library built for this major, where the Postgres user can read it; empty
  // when there is none (computes then run without it).
  std::filesystem::path role_library;
  std::filesystem::path bin(std::string_view name) const { return bindir / name; }
};

class PgInstalls {
 public:
  PgInstalls() = default;
  // Known installs, ascending by major (for tests that run no PostgreSQL binary).
  explicit PgInstalls(std::vector<PgInstall> installs) : installs_(std::move(installs)) {}
  // bindir empty: discover every /usr/lib/postgresql/*/bin. Errors when none is usable.
  static Result<PgInstalls> discover(const std::filesystem::path& bindir);
  const PgInstall* find(int major) const;
  const PgInstall& newest() const { return installs_.back(); }
  const std::vector<PgInstall>& all() const { return installs_; }
  void set_role_library(int major, std::filesystem::path library);
  std::string majors_list() const;  // "14, 15"

 private:
  std::vector<PgInstall> installs_;  // ascending major
};

}  // namespace argon
