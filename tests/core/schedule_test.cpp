// Learning-rate schedules: each kind and the warm-up against its closed formula.
#include "unit.hpp"

#include <tuple>

#include <cmath>
#include <map>
#include <string>

#include "host_schema.hpp"
#include "schedule.hpp"

namespace saq::host {

namespace {

/// A train stage as the host fills it: every default of host_schema.cpp, then `values`.
Params train_stage(const std::map<std::string, Value>& values) {
  Params p("stage[0]", "train", "test");
  Schema schema = stage_schema("train");
  for (const auto& s : schema.specs())
    if (s.fallback) p.set(s.name, *s.fallback, "default");
  for (const auto& item : values) {
    const auto& k = std::get<0>(item);
    const auto& v = std::get<1>(item);
    REQUIRE_MESSAGE(schema.find(k) != nullptr, "no stage key ", k);
    p.set(k, v, "test");
  }
  return p;
}

using I = std::int64_t;

}  // namespace

TEST_CASE("cosine per epoch: 1 at the start, halfway between at E/2, the floor at E") {
  // E = 10, m = 0.1: f(t) = 0.1 + 0.9·(1 + cos(πt/10))/2
  LrSchedule s(train_stage({{"schedule", std::string("cosine")}, {"epochs", I{10}}, {"min_lr_factor", 0.1}}), 5);
  CHECK(s.factor(0, 0) == doctest::Approx(1.0));
  CHECK(s.factor(5, 0) == doctest::Approx(0.55));  // cos(π/2) = 0: 0.1 + 0.45
  CHECK(s.factor(10, 0) == doctest::Approx(0.1));  // cos(π) = −1
  // t = 2: cos(π/5) = (1 + √5)/4 = 0.809017 → 0.1 + 0.45·1.809017 = 0.914058
  CHECK(s.factor(2, 0) == doctest::Approx(0.1 + 0.45 * (1 + (1 + std::sqrt(5.0)) / 4)));
  CHECK(s.factor(5, 3) == s.factor(5, 0));  // per epoch: the step inside the epoch does not count
}

TEST_CASE("cosine per step moves inside the epoch") {
  // E = 5, 4 steps per epoch, m = 0: f(t) = (1 + cos(πt/5))/2 with t = epoch + step/4
  LrSchedule s(train_stage({{"schedule", std::string("cosine")}, {"lr_update", std::string("step")}, {"epochs", I{5}}}),
               4);
  CHECK(s.factor(2, 2) == doctest::Approx(0.5));  // t = 2.5 = E/2
  // t = 0.5: (1 + cos(π/10))/2 = (1 + 0.9510565)/2 = 0.9755283
  CHECK(s.factor(0, 2) == doctest::Approx(0.9755283).epsilon(1e-6));
  CHECK(s.factor(0, 2) < s.factor(0, 1));
}

TEST_CASE("multistep multiplies by gamma at each milestone reached") {
  LrSchedule s(train_stage({{"schedule", std::string("multistep")}, {"milestones", std::vector<I>{2, 4}},
                            {"gamma", 0.1}}),
               4);
  CHECK(s.factor(0, 0) == 1.0);
  CHECK(s.factor(1, 3) == 1.0);
  CHECK(s.factor(2, 0) == doctest::Approx(0.1));
  CHECK(s.factor(3, 2) == doctest::Approx(0.1));
  CHECK(s.factor(4, 0) == doctest::Approx(0.01));  // 0.1²
  CHECK(s.factor(9, 0) == doctest::Approx(0.01));

  LrSchedule per_step(train_stage({{"schedule", std::string("multistep")}, {"lr_update", std::string("step")},
                                   {"milestones", std::vector<I>{2, 4}}, {"gamma", 0.1}}),
                      4);
  CHECK(per_step.factor(1, 3) == 1.0);  // t = 1.75 < 2
  CHECK(per_step.factor(2, 0) == doctest::Approx(0.1));
}

TEST_CASE("step multiplies by gamma every step_size epochs") {
  // f = 0.5^⌊t/3⌋
  LrSchedule s(train_stage({{"schedule", std::string("step")}, {"step_size", I{3}}, {"gamma", 0.5}}), 4);
  CHECK(s.factor(0, 0) == 1.0);
  CHECK(s.factor(2, 3) == 1.0);
  CHECK(s.factor(3, 0) == 0.5);
  CHECK(s.factor(5, 0) == 0.5);
  CHECK(s.factor(6, 0) == 0.25);
  CHECK(s.factor(9, 0) == 0.125);
}

TEST_CASE("constant stays at 1") {
  LrSchedule s(train_stage({{"schedule", std::string("constant")}}), 4);
  CHECK(s.factor(0, 0) == 1.0);
  CHECK(s.factor(7, 3) == 1.0);
}

TEST_CASE("warm-up scales by (g + 1)/W over the first W = warmup_epochs · steps_per_epoch steps") {
  // W = 2 · 4 = 8 steps; g = epoch·4 + step
  LrSchedule s(train_stage({{"schedule", std::string("constant")}, {"warmup_epochs", 2.0}}), 4);
  CHECK(s.factor(0, 0) == 0.125);  // 1/8
  CHECK(s.factor(0, 3) == 0.5);    // g = 3: 4/8
  CHECK(s.factor(1, 2) == 0.875);  // g = 6: 7/8
  CHECK(s.factor(1, 3) == 1.0);    // g = 7: 8/8
  CHECK(s.factor(2, 0) == 1.0);    // warm-up over

  // With cosine (E = 10, per epoch): epoch 1, step 0 → g = 4: 5/8 · (1 + cos(π/10))/2 = 0.625 · 0.9755283
  LrSchedule warm_cosine(
      train_stage({{"schedule", std::string("cosine")}, {"epochs", I{10}}, {"warmup_epochs", 2.0}}), 4);
  CHECK(warm_cosine.factor(1, 0) == doctest::Approx(0.625 * 0.9755283).epsilon(1e-6));
}

TEST_CASE("a warm-up of a fractional number of steps never raises the rate above the base rate") {
  // W = 0.3 · 5 = 1.5 steps: g = 0 gives 1/1.5; g = 1 would give 2/1.5 without the cap
  LrSchedule s(train_stage({{"schedule", std::string("constant")}, {"warmup_epochs", 0.3}}), 5);
  CHECK(s.factor(0, 0) == doctest::Approx(2.0 / 3.0));
  CHECK(s.factor(0, 1) == 1.0);
  CHECK(s.factor(0, 2) == 1.0);
}

}  // namespace saq::host
