#pragma once
/// Sharpness of a trained model, max_{‖ε‖≤ρ} L(w + ε) − L(w), two ways: the one-step estimate SAM trains with,
/// ε = ρ·g/‖g‖ (g = ∇L at ε = 0), and projected gradient ascent from there (steps of ρ/k along the normalised
/// gradient, projected back onto the ball; the best point seen is kept, so it is never below the one-step value).
/// m-sharpness (Foret et al.): with m = the batch size, ε is found and the rise measured per batch and averaged;
/// with m = the whole subset, once over all of it.
#include <string>
#include <vector>

#include "loss_probe.hpp"

namespace saq::host {

struct SharpnessPoint {
  double rho = 0;
  double one_step = 0, ascent = 0;  ///< L(w + ε) − L(w)
};

struct Sharpness {
  std::string target, m;  ///< "quantized" | "latent"; "batch" | "subset"
  double loss = 0;        ///< L(w)
  int ascent_steps = 0;
  std::vector<SharpnessPoint> points;
};

/// Throws std::invalid_argument for a ρ ≤ 0.
Sharpness measure_sharpness(const LossProbe& probe, const std::vector<double>& rhos, int ascent_steps, bool per_batch);

/// ε = ρ·g/‖g‖ over all the probe's batches (or one): the SAM direction scaled to ρ (ρ = 1: the unit direction).
std::vector<at::Tensor> sam_direction(const LossProbe& probe, double rho, long batch = -1);

}  // namespace saq::host
