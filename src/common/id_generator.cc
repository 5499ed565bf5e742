#include "common/id_generator.h"

#include <fmt/format.h>

#include <array>

#include "common/random.h"

namespace argon {
namespace {

constexpr std::array<std::string_view, 48> kAdjectives = {
    "aged",  "amber",   "ancient",  "autumn",    "billowing", "bitter",  "black",   "blue",
    "bold",  "broad",   "calm",     "cold",      "cool",      "crimson", "curly",   "damp",
    "dark",  "dawn",    "delicate", "divine",    "dry",       "empty",   "falling", "fancy",
    "flat",  "floral",  "fragrant", "frosty",    "gentle",    "green",   "hidden",  "holy",
    "icy",   "jolly",   "late",     "lingering", "little",    "lively",  "long",    "lucky",
    "misty", "morning", "muddy",    "nameless",  "noisy",     "odd",     "old",     "orange"};

constexpr std::array<std::string_view, 48> kNouns = {
    "bird",     "brook",   "bush",   "cake",    "cell",     "cherry", "cloud",   "credit",
    "darkness", "dawn",    "dew",    "disk",    "dream",    "dust",   "feather", "field",
    "fire",     "firefly", "flower", "fog",     "forest",   "frog",   "frost",   "glade",
    "glitter",  "grass",   "haze",   "hill",    "lake",     "leaf",   "limit",   "math",
    "meadow",   "mode",    "moon",   "morning", "mountain", "mouse",  "mud",     "night",
    "paper",    "pine",    "poetry", "pond",    "queen",    "rain",   "river",   "salad"};

bool alnum_part(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

}  // namespace

std::string RandomIdGenerator::make(std::string_view prefix) {
  auto adj = kAdjectives[secure_random(kAdjectives.size())];
  auto noun = kNouns[secure_random(kNouns.size())];
  auto digits = secure_random(90000000) + 10000000;  // eight digits, no leading zero
  if (prefix.empty()) return fmt::format("{}-{}-{}", adj, noun, digits);
  return fmt::format("{}-{}-{}-{}", prefix, adj, noun, digits);
}

bool looks_like_id(std::string_view id, std::string_view prefix) {
  if (!prefix.empty()) {
    if (id.size() <= prefix.size() + 1 || id.substr(0, prefix.size()) != prefix ||
        id[prefix.size()] != '-') {
      return false;
    }
    id.remove_prefix(prefix.size() + 1);
  }
  int parts = 0;
  while (true) {
    auto dash = id.find('-');
    if (!alnum_part(id.substr(0, dash))) return false;
    ++parts;
    if (dash == std::string_view::npos) break;
    id.remove_prefix(dash + 1);
  }
  return parts == 3;
}

}  // namespace argon
