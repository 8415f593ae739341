#include "esam.hpp"
#include "gsam.hpp"
#include "looksam.hpp"
#include "msam.hpp"
#include "sam.hpp"

namespace saq::plugins {

class SamPlugin final : public Sam {
 public:
  SamPlugin(const Params& p, const Context& ctx) : Sam(p, ctx, false) {}
  static Schema schema() { return Sam::schema(false); }
};

class AsamPlugin final : public Sam {
 public:
  AsamPlugin(const Params& p, const Context& ctx) : Sam(p, ctx, true) {}
  static Schema schema() { return Sam::schema(true); }
};

}  // namespace saq::plugins

SAQ_PLUGIN("sam", "1.1.0", "sharpness-aware optimizers: SAM, ASAM, ESAM, LookSAM, GSAM, MSAM, on quantized or latent weights",
           reg) {
  reg.add<saq::plugins::SamPlugin>("sam", "SAM; with perturb = \"quantized\" it is SAQ (ε on the quantized weights)");
  reg.add<saq::plugins::AsamPlugin>("asam", "adaptive SAM (ε scaled by |w| + η); QASAM on quantized weights");
  reg.add<saq::plugins::Esam>("esam", "efficient SAM: stochastic weight perturbation and data selection");
  reg.add<saq::plugins::LookSam>("looksam", "LookSAM: SAM's two passes every k steps, their direction reused between");
  reg.add<saq::plugins::Msam>("msam", "momentum-SAM: one pass at w − ρ·v/‖v‖, v the base optimizer's momentum");
  reg.add<saq::plugins::Gsam>("gsam", "GSAM: SAM's gradient minus α of the clean gradient's orthogonal part; ρ follows the lr");
}
