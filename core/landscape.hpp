#pragma once
/// Loss landscapes around a trained model (Li et al., NeurIPS 2018): slices L(w + α·d) along a direction d and a
/// surface L(w + α·d₁ + β·d₂), with filter-normalised random directions — each filter (a conv's output channel,
/// a linear layer's row) of d rescaled to the norm of the same filter of w — so that models of one architecture
/// are compared at the scale of their own weights, along the same seeded Gaussian draws.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "loss_probe.hpp"

namespace saq::host {

/// `direction` with each filter rescaled to the norm of the same filter of `weights`.
std::vector<at::Tensor> filter_normalized(const std::vector<at::Tensor>& direction, const std::vector<at::Tensor>& weights);
/// Seeded Gaussian directions shaped like `weights`, filter-normalised.
std::vector<at::Tensor> filter_normalized_direction(const std::vector<at::Tensor>& weights, std::uint64_t seed);

/// Where a slice's loss jumps: between grid points i and i + 1 (α from → to).
struct Jump {
  std::size_t index;            ///< i
  double from, to;              ///< α_i, α_{i+1}
  double loss_change;           ///< L(α_{i+1}) − L(α_i)
  double level_change;          ///< change of the fraction of weights off their α = 0 level (NaN: not measured)
};

struct Slice {
  std::string direction;                  ///< "random" | "sam"
  std::vector<double> alphas, loss;       ///< L(w + α·d) on the probe's batches
  std::vector<double> test_loss;          ///< on the test probe's, when one is given
  std::vector<double> level_changes;      ///< fraction of quantized weights whose level differs from α = 0 (latent)
  std::vector<Jump> jumps;                ///< of `loss` (find_jumps)
};
Slice slice(const LossProbe& probe, const LossProbe* test, const std::vector<at::Tensor>& direction,
            const std::string& name, const std::vector<double>& alphas);

/// The steps of `loss` over the grid that are jumps rather than the slope of a smooth curve: |ΔL| more than
/// 3 times the median |ΔL| of the slice and more than 1% of the slice's loss range. (On a parabola sampled evenly
/// around its minimum the largest step is twice the median, so a smooth bowl has none.) `levels` may be empty.
std::vector<Jump> find_jumps(const std::vector<double>& alphas, const std::vector<double>& loss,
                             const std::vector<double>& levels);

struct Surface {
  std::vector<double> alphas, betas;
  std::vector<double> loss;  ///< row-major: loss[j·|α| + i] at (α_i, β_j)
};
Surface surface(const LossProbe& probe, const std::vector<at::Tensor>& d1, const std::vector<at::Tensor>& d2,
                const std::vector<double>& alphas, const std::vector<double>& betas);

/// n evenly spaced points from lo to hi (n ≥ 2).
std::vector<double> linspace(double lo, double hi, int n);

}  // namespace saq::host
