// Generates the public ids Neon clients expect: projects `<word>-<word>-<digits>`, branches
// `br-<word>-<word>-<digits>`, endpoints `ep-<word>-<word>-<digits>`, snapshots `snap-...`.
// The official CLI treats a branch argument as an id only when it has exactly three dash-separated
// [a-z0-9]+ parts after `br-`, so the words never contain dashes.
#pragma once

#include <string>
#include <string_view>

namespace argon {

class IdGenerator {
 public:
  virtual ~IdGenerator() = default;
  // prefix "" for projects, "br", "ep", "snap".
  virtual std::string make(std::string_view prefix) = 0;
};

class RandomIdGenerator final : public IdGenerator {
 public:
  std::string make(std::string_view prefix) override;
};

// True when `id` has the shape `<prefix>-<a>-<b>-<c>` with [a-z0-9]+ parts (prefix may be empty,
// then three parts).
bool looks_like_id(std::string_view id, std::string_view prefix);

}  // namespace argon
