#include "sharpness_aware.hpp"

namespace saq::plugins {

class Sam final : public SharpnessAware {
 public:
  Sam(const Params& p, const Context& ctx) : SharpnessAware(p, ctx, Variant::Sam) {}
  static Schema schema() { return SharpnessAware::schema(Variant::Sam); }
};

class Asam final : public SharpnessAware {
 public:
  Asam(const Params& p, const Context& ctx) : SharpnessAware(p, ctx, Variant::Asam) {}
  static Schema schema() { return SharpnessAware::schema(Variant::Asam); }
};

class Esam final : public SharpnessAware {
 public:
  Esam(const Params& p, const Context& ctx) : SharpnessAware(p, ctx, Variant::Esam) {}
  static Schema schema() { return SharpnessAware::schema(Variant::Esam); }
};

}  // namespace saq::plugins

SAQ_PLUGIN("sam", "1.0.0", "sharpness-aware optimizers: SAM, ASAM, ESAM, on quantized or latent weights", reg) {
  reg.add<saq::plugins::Sam>("sam", "SAM; with perturb = \"quantized\" it is SAQ (ε on the quantized weights)");
  reg.add<saq::plugins::Asam>("asam", "adaptive SAM (ε scaled by |w| + η); QASAM on quantized weights");
  reg.add<saq::plugins::Esam>("esam", "efficient SAM: stochastic weight perturbation and data selection");
}
