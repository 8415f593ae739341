#pragma once
/// The progress of one training epoch on stderr: on a terminal, one line redrawn in place (a bar, step/steps,
/// images/s, loss, ETA); elsewhere (a log file, a pipe), a plain line every N steps.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <utility>

namespace saq::host {

struct ProgressOptions {
  std::string label;              ///< leads every line, e.g. "stage 1 epoch 2/5"
  bool terminal = false;          ///< redraw one line in place instead of printing lines
  int width = 80;                 ///< terminal columns; the line is cut to width - 1 so that it never wraps
  std::int64_t every = 100;       ///< plain mode: a line every N steps (0: only the last)
  double redraw_s = 0.1;          ///< terminal mode: at most one redraw per this many seconds
  std::ostream* out = nullptr;    ///< where to write; null: std::cerr
  std::function<double()> clock;  ///< seconds on a monotonic clock; empty: std::chrono::steady_clock

  /// For stderr: terminal when isatty(2), width from the terminal (else $COLUMNS, else 80).
  static ProgressOptions for_stderr(std::string label, std::int64_t every);
};

/// One epoch's progress. The clock starts at construction; ETA = elapsed / steps done × steps left.
class ProgressDisplay {
 public:
  ProgressDisplay(std::int64_t steps, ProgressOptions options);
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;
  /// Ends a line left drawn (an exception out of the loop, say) so the next output starts on a fresh line.
  ~ProgressDisplay();

  /// After step `step` (1..steps) with `images` images seen so far this epoch; `loss` is what to show (the
  /// epoch's running mean, say). Draws when due: terminal, at most every redraw_s and always at the last step;
  /// plain, every `every` steps and at the last.
  /// images < 0 leaves img/s out, a non-finite loss the loss (work that is not training: analyze's measurements).
  void update(std::int64_t step, std::int64_t images, double loss);
  /// A note shown after the other fields from the next draw on (what is being worked on); "" for none.
  void set_note(std::string note) { note_ = std::move(note); }
  /// Terminal mode: erases the drawn line so that a log line can be written; the next update draws it again.
  void clear();
  /// Draws the final state ("done in" instead of ETA) and ends the line. Later calls do nothing.
  void finish();

  /// The text of the line now, without "\r" or newline, cut to the width in terminal mode.
  std::string line() const;

 private:
  std::string fields() const;
  void draw();

  std::int64_t steps_;
  ProgressOptions o_;
  std::ostream& out_;
  double start_;
  std::int64_t step_ = 0, images_ = 0;
  double loss_ = 0, now_ = 0, last_draw_ = -1e300;  // the first update draws
  bool drawn_ = false, finished_ = false;
  std::string note_;
};

/// "m:ss", or "h:mm:ss" from an hour on; "--:--" for a negative or non-finite duration.
std::string format_duration(double seconds);

}  // namespace saq::host
