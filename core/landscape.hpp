#pragma once
/// Loss landscapes around a trained model (Li et al., NeurIPS 2018): slices L(w + α·d) along a direction d and a
/// surface L(w + α·d₁ + β·d₂), with filter-normalised random directions — each filter (a conv's output channel,
/// a linear layer's row) of d rescaled to the norm of the same filter of w — so that models of one architecture
/// are compared at the scale of their own weights, along the same seeded Gaussian draws.
#include <cstdint>
#include <string>
#include <vector>

#include "loss_probe.hpp"

namespace saq::host {

/// `direction` with each filter rescaled to the norm of the same filter of `weights`.
std::vector<at::Tensor> filter_normalized(const std::vector<at::Tensor>& direction, const std::vector<at::Tensor>& weights);
/// Seeded Gaussian directions shaped like `weights`, filter-normalised.
std::vector<at::Tensor> filter_normalized_direction(const std::vector<at::Tensor>& weights, std::uint64_t seed);

struct Slice {
  std::string direction;                  ///< "random" | "sam"
  std::vector<double> alphas, loss;       ///< L(w + α·d) on the probe's batches
  std::vector<double> test_loss;          ///< on the test probe's, when one is given
  std::vector<double> level_changes;      ///< fraction of quantized weights whose level differs from α = 0 (latent)
};
Slice slice(const LossProbe& probe, const LossProbe* test, const std::vector<at::Tensor>& direction,
            const std::string& name, const std::vector<double>& alphas);

struct Surface {
  std::vector<double> alphas, betas;
  std::vector<double> loss;  ///< row-major: loss[j·|α| + i] at (α_i, β_j)
};
Surface surface(const LossProbe& probe, const std::vector<at::Tensor>& d1, const std::vector<at::Tensor>& d2,
                const std::vector<double>& alphas, const std::vector<double>& betas);

/// n evenly spaced points from lo to hi (n ≥ 2).
std::vector<double> linspace(double lo, double hi, int n);

}  // namespace saq::host
