#include "progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <limits>

#include <fmt/format.h>

namespace saq::host {

namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr const char* kEraseToEnd = "\x1b[K";
constexpr int kMinBar = 10;  // narrower than this, the bar says nothing the step count does not

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<std::int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

ProgressOptions ProgressOptions::for_stderr(std::string label, std::int64_t every) {
  ProgressOptions o;
  o.label = std::move(label);
  o.every = every;
  o.terminal = ::isatty(STDERR_FILENO) == 1;
  winsize ws{};
  if (o.terminal && ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) o.width = ws.ws_col;
  else if (const char* cols = std::getenv("COLUMNS"); cols && std::atoi(cols) > 0) o.width = std::atoi(cols);
  return o;
}

ProgressDisplay::ProgressDisplay(std::int64_t steps, ProgressOptions options)
    : steps_(std::max<std::int64_t>(steps, 1)),
      o_(std::move(options)),
      out_(o_.out ? *o_.out : std::cerr) {
  if (!o_.clock) o_.clock = steady_seconds;
  start_ = now_ = o_.clock();
}

ProgressDisplay::~ProgressDisplay() {
  if (o_.terminal && drawn_ && !finished_) out_ << '\n' << std::flush;
}

std::string ProgressDisplay::fields() const {
  const double elapsed = now_ - start_;
  const int digits = static_cast<int>(std::to_string(steps_).size());
  std::string s = fmt::format("{:>{}}/{}", step_, digits, steps_);
  if (images_ >= 0)
    s += elapsed > 0 ? fmt::format("  {:.0f} img/s", static_cast<double>(images_) / elapsed) : "  -- img/s";
  if (std::isfinite(loss_)) s += fmt::format("  loss {:.4f}", loss_);
  if (!note_.empty()) s += "  " + note_;
  if (finished_) return s + "  done in " + format_duration(elapsed);
  const double left = step_ > 0 ? elapsed / static_cast<double>(step_) * static_cast<double>(steps_ - step_)
                                : std::numeric_limits<double>::quiet_NaN();
  return s + "  ETA " + format_duration(left);
}

std::string ProgressDisplay::line() const {
  const std::string head = o_.label.empty() ? "" : o_.label + " ";
  const std::string tail = fields();
  if (!o_.terminal) return head + "step " + tail;
  const auto room = static_cast<std::int64_t>(o_.width) - 1;  // the last column would wrap on some terminals
  const std::int64_t bar = room - static_cast<std::int64_t>(head.size() + tail.size()) - 3;  // "[", "] "
  std::string text = head;
  if (bar >= kMinBar) {
    const auto filled = static_cast<size_t>(bar * std::min(step_, steps_) / steps_);
    text += "[" + std::string(filled, '#') + std::string(static_cast<size_t>(bar) - filled, '.') + "] ";
  }
  text += tail;
  if (static_cast<std::int64_t>(text.size()) > room) text.resize(static_cast<size_t>(std::max<std::int64_t>(room, 0)));
  return text;
}

void ProgressDisplay::draw() {
  if (o_.terminal) {
    out_ << '\r' << line() << kEraseToEnd << std::flush;
    drawn_ = true;
  } else {
    out_ << line() << '\n' << std::flush;
  }
  last_draw_ = now_;
}

void ProgressDisplay::update(std::int64_t step, std::int64_t images, double loss) {
  if (finished_) return;
  step_ = step, images_ = images, loss_ = loss;
  now_ = o_.clock();
  if (o_.terminal) {
    if (step >= steps_ || now_ - last_draw_ >= o_.redraw_s) draw();
  } else if (o_.every > 0 && step % o_.every == 0 && step < steps_) {
    draw();  // the last step is finish()'s line
  }
}

void ProgressDisplay::clear() {
  if (!o_.terminal || !drawn_) return;
  out_ << '\r' << kEraseToEnd << std::flush;
  drawn_ = false;
  last_draw_ = -std::numeric_limits<double>::infinity();
}

void ProgressDisplay::finish() {
  if (finished_) return;
  finished_ = true;
  now_ = o_.clock();
  if (o_.terminal) out_ << '\r' << line() << kEraseToEnd << '\n' << std::flush;
  else out_ << line() << '\n' << std::flush;
  drawn_ = false;
}

}  // namespace saq::host
