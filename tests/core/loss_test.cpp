// The training loss and the accuracy counts, on logits whose softmax is known by hand.
#include "unit.hpp"

#include <cmath>

#include <ATen/ATen.h>

#include "loss.hpp"

namespace saq::host {

namespace {
/// Logits ln 1, ln 2, ln 3 (+ c): softmax [1/6, 2/6, 3/6] whatever the shift c.
at::Tensor thirds_logits(double shift) {
  return at::tensor({0.0, std::log(2.0), std::log(3.0)}, at::kDouble).add(shift).view({1, 3}).repeat({2, 1});
}
const at::Tensor labels = at::tensor({2, 0}, at::kLong);
}  // namespace

TEST_CASE("cross-entropy without smoothing is −log p of the label, per sample") {
  at::Tensor loss = cross_entropy_per_sample(thirds_logits(0), labels, 0.0);
  REQUIRE(loss.sizes().vec() == std::vector<std::int64_t>{2});
  CHECK(loss[0].item<double>() == doctest::Approx(0.6931472));  // −log(3/6) = ln 2
  CHECK(loss[1].item<double>() == doctest::Approx(1.7917595));  // −log(1/6) = ln 6
  // a shift of every logit changes nothing (and does not overflow)
  CHECK(at::allclose(cross_entropy_per_sample(thirds_logits(500), labels, 0.0), loss));
}

TEST_CASE("label smoothing 0.1 mixes in the mean of −log p over all classes") {
  // mean_k(−log p_k) = (ln 6 + ln 3 + ln 2)/3 = ln 36 / 3 = 1.1945063
  // label 2: 0.9·ln 2 + 0.1·1.1945063 = 0.6238325 + 0.1194506 = 0.7432831
  // label 0: 0.9·ln 6 + 0.1·1.1945063 = 1.6125835 + 0.1194506 = 1.7320342
  at::Tensor loss = cross_entropy_per_sample(thirds_logits(0), labels, 0.1);
  CHECK(loss[0].item<double>() == doctest::Approx(0.7432831));
  CHECK(loss[1].item<double>() == doctest::Approx(1.7320342));
  // PyTorch's own label-smoothed cross-entropy agrees (reduction none = 0, ignore_index −100)
  at::Tensor torch_loss = at::cross_entropy_loss(thirds_logits(0), labels, {}, 0, -100, 0.1);
  CHECK(at::allclose(loss, torch_loss));
}

TEST_CASE("count_correct counts top-1 and top-5 hits") {
  // 7 classes; row 0: label ranks 1st; row 1: label ranks 3rd; row 2: label ranks 6th.
  at::Tensor logits = at::tensor({7., 6., 5., 4., 3., 2., 1.,  //
                                  5., 7., 6., 4., 3., 2., 1.,  //
                                  7., 6., 5., 4., 3., 2., 1.})
                          .view({3, 7});
  Correct c = count_correct(logits, at::tensor({0, 0, 5}, at::kLong));
  CHECK(c.top1 == 1);
  CHECK(c.top5 == 2);
}

TEST_CASE("with fewer than 5 classes every label is in the top 5") {
  at::Tensor logits = at::tensor({3., 2., 1., 3., 2., 1.}).view({2, 3});
  Correct c = count_correct(logits, at::tensor({2, 0}, at::kLong));
  CHECK(c.top1 == 1);  // row 1 only
  CHECK(c.top5 == 2);
}

}  // namespace saq::host
