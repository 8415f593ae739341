// A complete third-party quantizer plugin: the component, its schema, and the entry point.
#include "ternary_quantizer.hpp"

SAQ_PLUGIN("ternary", "1.0.0", "ternary weights (TWN) with PACT activations", reg) {
  reg.add<ternary::Ternary>("ternary", "ternary weights {-a, 0, +a} (TWN threshold 0.7 mean|w|), PACT activations");
}
