// Forward + backward time of each fused fake quantizer against its reference composition, on an activation tensor
// (128x64x16x16) and a conv weight (256x256x3x3), 4 bits, all hardware threads; median of 20 runs after a warm-up.
// usage: bench_fake_quant [REPEATS] [THREADS]     (default 20, all hardware threads)
// Times include the page faults of fresh outputs, which vary with malloc's state; with
// MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 freed memory stays mapped (steady state).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <saq/fake_quant.hpp>

namespace fq = saq::fake_quant;
using Clock = std::chrono::steady_clock;
using Quantizer = std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>;

namespace {

/// one forward and one backward (gradients of x and of the parameter, if any)
void once(const Quantizer& f, const at::Tensor& x, const at::Tensor& p, const at::Tensor& g) {
  std::vector<at::Tensor> inputs{x};
  if (p.defined()) inputs.push_back(p);
  at::Tensor y = f(x, p);
  torch::autograd::grad({y}, inputs, {g});
}

double median(std::vector<double> ms) {
  std::nth_element(ms.begin(), ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2), ms.end());
  return ms[ms.size() / 2];
}

/// Fused and reference run alternately, so that both meet the same state of malloc (whose mmap threshold adapts to
/// the sizes it sees, which changes how many fresh pages each output costs).
void row(const std::string& name, const Quantizer& fused, const Quantizer& reference, const at::Tensor& x,
         const at::Tensor& p, int repeats) {
  const at::Tensor g = at::randn(x.sizes());
  for (int i = 0; i < 5; ++i) {
    once(fused, x, p, g);
    once(reference, x, p, g);
  }
  std::vector<double> f, r;
  auto time = [&](const Quantizer& q, std::vector<double>& out) {
    const auto t0 = Clock::now();
    once(q, x, p, g);
    out.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  };
  for (int i = 0; i < repeats; ++i) {
    time(fused, f);
    time(reference, r);
  }
  const double mf = median(f), mr = median(r);
  std::printf("%s: fused %.3f ms, reference %.3f ms, reference/fused %.2f\n", name.c_str(), mf, mr, mr / mf);
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::stoi(argv[1])) : 20;
  const int threads = argc > 2 ? std::stoi(argv[2]) : static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(std::max(1, threads));
  at::manual_seed(0);
  const int bits = 4;
  const at::Tensor act = at::randn({128, 64, 16, 16}).requires_grad_();
  const at::Tensor weight = (at::randn({256, 256, 3, 3}) * 0.05).requires_grad_();
  const at::Tensor unit = at::rand({128, 64, 16, 16}).requires_grad_();
  const at::Tensor clip = at::full({1}, 1.5).requires_grad_();
  const at::Tensor wclip = at::full({1}, 0.1).requires_grad_();
  const double q = std::ldexp(1.0, bits - 1);  // signed LSQ range of the weights: [−2^(b−1), 2^(b−1) − 1]
  const at::Tensor step = at::full({1}, 2.0 * 0.8 / std::sqrt(15.0)).requires_grad_();
  const at::Tensor wstep = at::full({256}, 2.0 * 0.04 / std::sqrt(q - 1)).requires_grad_();
  const double act_scale = 1.0 / std::sqrt(64.0 * 16 * 16 * 15), w_scale = 1.0 / std::sqrt(weight.numel() * (q - 1));
  std::printf("%d threads, %d bits; activation %s, weight %s\n", at::get_num_threads(), bits, "128x64x16x16",
              "256x256x3x3");

  row("liq_activation", [&](auto& x, auto& p) { return fq::liq_activation(x, p, bits); },
      [&](auto& x, auto& p) { return fq::reference::liq_activation(x, p, bits); }, act, clip, repeats);
  row("liq_weight", [&](auto& x, auto& p) { return fq::liq_weight(x, p, bits); },
      [&](auto& x, auto& p) { return fq::reference::liq_weight(x, p, bits); }, weight, wclip, repeats);
  row("pact_activation", [&](auto& x, auto& p) { return fq::pact_activation(x, p, bits); },
      [&](auto& x, auto& p) { return fq::reference::pact_activation(x, p, bits); }, act, clip, repeats);
  row("lsq (activation, per tensor)", [&](auto& x, auto& p) { return fq::lsq(x, p, 0, 15, act_scale); },
      [&](auto& x, auto& p) { return fq::reference::lsq(x, p, 0, 15, act_scale); }, act, step, repeats);
  const auto qn = static_cast<std::int64_t>(q), qp = qn - 1;
  row("lsq (weight, per channel)", [&](auto& x, auto& p) { return fq::lsq(x, p, qn, qp, w_scale); },
      [&](auto& x, auto& p) { return fq::reference::lsq(x, p, qn, qp, w_scale); }, weight, wstep, repeats);
  row("uniform_ste", [&](auto& x, auto&) { return fq::uniform_ste(x, bits); },
      [&](auto& x, auto&) { return fq::reference::uniform_ste(x, bits); }, unit, at::Tensor(), repeats);
  return 0;
}
