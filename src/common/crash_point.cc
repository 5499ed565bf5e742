#include "common/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

namespace argon {

namespace {

struct Target {
  std::string name;
  long hit = 1;  // "name#3": the third time the point is reached
};

Target read_target() {
  const char* v = std::getenv("ARGON_CRASH_AT");
  Target t{v ? v : "", 1};
  if (auto hash = t.name.find('#'); hash != std::string::npos) {
    const std::string n = t.name.substr(hash + 1);
    std::from_chars(n.data(), n.data() + n.size(), t.hit);
    t.name.resize(hash);
  }
  return t;
}

struct Delay {
  std::string name;
  long ms = 0;
};

Delay read_delay() {
  const char* v = std::getenv("ARGON_DELAY_AT");
  Delay d{v ? v : "", 0};
  if (auto colon = d.name.find(':'); colon != std::string::npos) {
    const std::string n = d.name.substr(colon + 1);
    std::from_chars(n.data(), n.data() + n.size(), d.ms);
    d.name.resize(colon);
  }
  return d;
}

}  // namespace

void crash_point(std::string_view name) {
  static const Delay delay = read_delay();
  if (!delay.name.empty() && delay.name == name && delay.ms > 0) {
    // Tests wait for this line to know the work is being held.
    static const std::string msg = "argond: ARGON_DELAY_AT: holding " + delay.name + "\n";
    (void)!::write(2, msg.data(), msg.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(delay.ms));
  }
  static const Target target = read_target();
  static std::atomic<long> hits{0};
  if (target.name.empty() || target.name != name) return;
  if (hits.fetch_add(1) + 1 < target.hit) return;
  static const char msg[] = "argond: ARGON_CRASH_AT reached; SIGKILL\n";
  (void)!::write(2, msg, sizeof msg - 1);
  ::kill(::getpid(), SIGKILL);
}

}  // namespace argon
