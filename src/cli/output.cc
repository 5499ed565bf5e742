#include "cli/output.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace argon::cli {

namespace json = boost::json;

std::string field(const json::value& obj, std::string_view key) {
  const json::value* v = &obj;
  while (!key.empty()) {
    const auto dot = key.find('.');
    const auto part = key.substr(0, dot);
    if (!v->is_object()) return "-";
    auto it = v->as_object().find(part);
    if (it == v->as_object().end()) return "-";
    v = &it->value();
    key = dot == std::string_view::npos ? std::string_view() : key.substr(dot + 1);
  }
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_bool()) return v->as_bool() ? "yes" : "no";
  if (v->is_null()) return "-";
  return json::serialize(*v);
}

void print_json(const json::value& v) { fmt::print("{}\n", json::serialize(v)); }

void print_table(const std::vector<Column>& columns, const json::array& items) {
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> width;
  for (const auto& c : columns) width.push_back(c.header.size());
  for (const auto& item : items) {
    auto& row = rows.emplace_back();
    for (size_t i = 0; i < columns.size(); ++i) {
      row.push_back(field(item, columns[i].key));
      width[i] = std::max(width[i], row.back().size());
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size(); ++i) {
      out += i + 1 == cells.size() ? cells[i] : fmt::format("{:<{}}  ", cells[i], width[i]);
    }
    fmt::print("{}\n", out);
  };
  std::vector<std::string> headers;
  for (const auto& c : columns) headers.push_back(c.header);
  line(headers);
  for (const auto& r : rows) line(r);
}

void print(Format format, const std::vector<Column>& columns, const json::value& v) {
  if (format == Format::kJson) return print_json(v);
  if (v.is_array()) return print_table(columns, v.as_array());
  print_table(columns, json::array{v});
}

void say(std::string_view line) {
  fmt::print(stderr, "{}\n", line);
  std::fflush(stderr);
}

TerminalProgress::TerminalProgress(std::string what)
    : what_(std::move(what)), tty_(::isatty(STDERR_FILENO)) {}

void TerminalProgress::update(const std::string& action, std::chrono::milliseconds elapsed) {
  if (tty_) {
    static constexpr const char* kFrames[] = {"|", "/", "-", "\\"};
    fmt::print(stderr, "\r\033[K{} {} ({}, {:.1f} s)", kFrames[frame_++ % 4], what_, action,
               elapsed.count() / 1000.0);
    std::fflush(stderr);
    drawn_ = true;
  } else if (action != last_action_) {
    say(fmt::format("{}: waiting for {}", what_, action));
  }
  last_action_ = action;
}

void TerminalProgress::done() {
  if (tty_ && drawn_) {
    fmt::print(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  drawn_ = false;
}

}  // namespace argon::cli
