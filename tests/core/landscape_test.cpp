// Loss-landscape directions and grids: filter normalisation gives each filter of the direction the norm of the
// same filter of the weights (Li et al.), the same seed draws the same direction, and the grid holds α = 0.
#include "unit.hpp"

#include <cmath>

#include <ATen/ATen.h>

#include "landscape.hpp"

TEST_CASE("a filter-normalised direction has, filter by filter, the weights' norms") {
  at::manual_seed(1);
  const std::vector<at::Tensor> weights = {at::randn({8, 3, 3, 3}) * 0.1, at::randn({10, 8}) * 3};
  const auto d = saq::host::filter_normalized_direction(weights, 42);
  REQUIRE(d.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(d[i].sizes() == weights[i].sizes());
    const at::Tensor wn = weights[i].reshape({weights[i].size(0), -1}).norm(2, 1);
    const at::Tensor dn = d[i].reshape({d[i].size(0), -1}).norm(2, 1);
    CHECK(at::allclose(dn, wn, 1e-5, 1e-7));
    CHECK(!at::allclose(d[i], weights[i]));  // a direction, not the weights again
  }
  const auto again = saq::host::filter_normalized_direction(weights, 42);
  CHECK(at::equal(again[0], d[0]));
  CHECK(!at::equal(saq::host::filter_normalized_direction(weights, 43)[0], d[0]));
  // any direction, e.g. a gradient, normalised the same way
  const auto g = saq::host::filter_normalized({at::ones({8, 3, 3, 3}), at::ones({10, 8})}, weights);
  CHECK(at::allclose(g[1].reshape({10, -1}).norm(2, 1), weights[1].norm(2, 1), 1e-5, 1e-7));
}

TEST_CASE("grids are evenly spaced and hold 0 exactly when symmetric with an odd count") {
  const auto a = saq::host::linspace(-0.5, 0.5, 21);
  REQUIRE(a.size() == 21);
  CHECK(a.front() == -0.5);
  CHECK(a.back() == 0.5);
  CHECK(a[10] == 0.0);
  CHECK(a[1] - a[0] == doctest::Approx(0.05));
}

TEST_CASE("loss jumps: a step in a slice is found where it is, a smooth bowl has none") {
  const auto a = saq::host::linspace(-1, 1, 21);
  std::vector<double> bowl, stepped, levels;
  for (double x : a) {
    bowl.push_back(x * x);
    // the bowl plus a rise of 0.5 between α = 0.3 and α = 0.4 (grid points 13 and 14)
    stepped.push_back(x * x + (x > 0.35 ? 0.5 : 0.0));
    levels.push_back(x > 0.35 ? 0.2 : 0.1);
  }
  CHECK(saq::host::find_jumps(a, bowl, {}).empty());  // steps 0.1·|α_i + α_{i+1}|: largest 0.19, median 0.11
  const auto j = saq::host::find_jumps(a, stepped, levels);
  REQUIRE(j.size() == 1);
  CHECK(j[0].index == 13);
  CHECK(j[0].from == doctest::Approx(0.3));
  CHECK(j[0].to == doctest::Approx(0.4));
  CHECK(j[0].loss_change == doctest::Approx(0.5 + 0.4 * 0.4 - 0.3 * 0.3));
  CHECK(j[0].level_change == doctest::Approx(0.1));
  CHECK(std::isnan(saq::host::find_jumps(a, stepped, {})[0].level_change));
  CHECK(saq::host::find_jumps({0, 1}, {0, 5}, {}).empty());  // too few points to tell a jump from a slope
}
