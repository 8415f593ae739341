// The progress line, rendered against an injected clock and terminal width; expected texts worked out by hand.
#include "unit.hpp"

#include <cmath>
#include <sstream>

#include "progress.hpp"

using saq::host::format_duration;
using saq::host::ProgressDisplay;
using saq::host::ProgressOptions;

namespace {

struct Fixture {
  double t = 0;
  std::ostringstream out;
  ProgressOptions options(bool terminal, int width = 80) {
    ProgressOptions o;
    o.label = "stage 1 epoch 2/5";
    o.terminal = terminal;
    o.width = width;
    o.every = 50;
    o.out = &out;
    o.clock = [this] { return t; };
    return o;
  }
};

const std::string kErase = "\x1b[K";

}  // namespace

TEST_CASE("durations read m:ss, then h:mm:ss") {
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(59.4) == "0:59");
  CHECK(format_duration(59.6) == "1:00");
  CHECK(format_duration(3599) == "59:59");
  CHECK(format_duration(3600) == "1:00:00");
  CHECK(format_duration(3725) == "1:02:05");
  CHECK(format_duration(-1) == "--:--");
  CHECK(format_duration(NAN) == "--:--");
}

TEST_CASE_FIXTURE(Fixture, "on a terminal: one line redrawn in place, a bar filling the width") {
  ProgressDisplay p(200, options(true));
  t = 10;
  p.update(50, 6400, 0.5);
  // 6400 images in 10 s = 640 img/s; 10 s for 50 steps, 150 left: 30 s. Head 18 + fields 41 + "[] " 3 leave
  // 79 - 62 = 17 columns of bar, 17 * 50/200 = 4.25 of them filled.
  const std::string line = "stage 1 epoch 2/5 [####.............]  50/200  640 img/s  loss 0.5000  ETA 0:30";
  CHECK(line.size() == 79);
  CHECK(p.line() == line);
  CHECK(out.str() == "\r" + line + kErase);

  t = 10.05;  // within redraw_s of the last draw: nothing is written
  p.update(51, 6528, 0.5);
  CHECK(out.str() == "\r" + line + kErase);
  t = 10.2;
  p.update(52, 6656, 0.5);
  CHECK(out.str().size() > ("\r" + line + kErase).size());

  out.str("");
  t = 40;
  p.update(200, 25600, 0.25);  // the last step is always drawn
  CHECK(out.str() == "\r" + p.line() + kErase);
  CHECK(p.line() == "stage 1 epoch 2/5 [#################] 200/200  640 img/s  loss 0.2500  ETA 0:00");
  out.str("");
  p.finish();
  // "done in 0:40" is 4 columns wider than "ETA 0:00": the bar gives them up.
  CHECK(out.str() == "\rstage 1 epoch 2/5 [#############] 200/200  640 img/s  loss 0.2500  done in 0:40" +
                         kErase + "\n");
  p.finish();  // once only
  p.update(200, 25600, 0.1);
  CHECK(out.str().find("0.1000") == std::string::npos);
}

TEST_CASE_FIXTURE(Fixture, "a narrow terminal drops the bar and cuts the line short of the last column") {
  ProgressDisplay p(200, options(true, 40));
  t = 10;
  p.update(50, 6400, 0.5);
  CHECK(p.line() == "stage 1 epoch 2/5  50/200  640 img/s  l");  // 39 columns
  t = 0;
  ProgressDisplay wide(200, options(true, 18 + 41 + 3 + 10 + 1));  // exactly room for the narrowest bar
  t = 20;
  wide.update(100, 12800, 0.5);
  CHECK(wide.line().find("[#####.....] 100/200") != std::string::npos);
}

TEST_CASE_FIXTURE(Fixture, "clear() erases the line for a log message; the next update draws at once") {
  ProgressDisplay p(200, options(true));
  t = 1;
  p.update(5, 640, 1.0);
  out.str("");
  p.clear();
  CHECK(out.str() == "\r" + kErase);
  out.str("");
  t = 1.01;
  p.update(6, 768, 1.0);
  CHECK(out.str() == "\r" + p.line() + kErase);
}

TEST_CASE_FIXTURE(Fixture, "a line left drawn is ended when the display goes away unfinished") {
  {
    ProgressDisplay p(10, options(true));
    t = 1;
    p.update(1, 128, 2.0);
  }
  CHECK(out.str().back() == '\n');
}

TEST_CASE_FIXTURE(Fixture, "not on a terminal: a plain line every N steps, and one at the end") {
  ProgressDisplay p(200, options(false));
  for (int step = 1; step <= 200; ++step) {
    t = 0.1 * step;
    p.update(step, 128 * step, 2.0 - 0.005 * step);
  }
  p.finish();
  // Every step takes 0.1 s and 128 images: 1280 img/s throughout; at step 50 ETA = 5 s / 50 * 150 = 15 s.
  CHECK(out.str() ==
        "stage 1 epoch 2/5 step  50/200  1280 img/s  loss 1.7500  ETA 0:15\n"
        "stage 1 epoch 2/5 step 100/200  1280 img/s  loss 1.5000  ETA 0:10\n"
        "stage 1 epoch 2/5 step 150/200  1280 img/s  loss 1.2500  ETA 0:05\n"
        "stage 1 epoch 2/5 step 200/200  1280 img/s  loss 1.0000  done in 0:20\n");
}

TEST_CASE_FIXTURE(Fixture, "before any time has passed there is no rate and no ETA") {
  ProgressDisplay p(20, options(false));
  CHECK(p.line() == "stage 1 epoch 2/5 step  0/20  -- img/s  loss 0.0000  ETA --:--");
}

TEST_CASE_FIXTURE(Fixture, "work that is not training: no img/s, no loss, a note of what runs") {
  ProgressDisplay p(7, options(false));
  p.set_note("loss slices");
  t = 30;
  p.update(3, -1, std::nan(""));
  // 3 of 7 done in 30 s: ETA = 30 / 3 × 4 = 40 s
  CHECK(p.line() == "stage 1 epoch 2/5 step 3/7  loss slices  ETA 0:40");
  p.set_note("");
  t = 70;
  p.update(7, -1, std::nan(""));
  CHECK(p.line() == "stage 1 epoch 2/5 step 7/7  ETA 0:00");
}
