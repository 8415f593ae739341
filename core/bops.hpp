#pragma once
/// BOPs and memory footprint of a quantized model, counted by the SAQ paper's rule:
///   conv BOPs = k²·(C_in/groups)·C_out·H_out·W_out·b_w·b_a, linear BOPs = C_in·C_out·b_w·b_a;
///   the first layer, when its weights are quantized, is counted with 8-bit activations even though its input is
///   not quantized; bias, BN, pooling, additions and activations are not counted.
///   Footprints: weights numel·b_w, activations = the layer input's numel·b_a (same first-layer rule), in bits.
#include <cstdint>
#include <string>
#include <vector>

#include <saq/dataset.hpp>
#include <saq/model.hpp>

#include "quantize.hpp"

namespace saq::host {

struct LayerCost {
  std::string name, kind, shape;  ///< kind: conv, dwconv (groups = C_in), gconv, linear
  std::string source;             ///< what set the bits (LayerBits::source), or the layer's tie when no bits given
  int weight_bits = 32, activation_bits = 32, counted_activation_bits = 32;
  std::int64_t macs = 0;
  double bops = 0, weight_bits_total = 0, activation_bits_total = 0;
};

struct CostReport {
  std::vector<LayerCost> layers;
  double bops = 0, macs = 0, weight_bits = 0, activation_bits = 0, max_activation_bits = 0;
};

/// Runs one sample of `info.input_shape` through `model` (eval mode, no grad) to learn the shapes, then counts
/// with each layer's own bits, or with `bits` (one per quantizable layer, in order) when given.
CostReport measure_costs(Model& model, const DataInfo& info, const std::vector<LayerBits>* bits = nullptr);

/// The per-layer table and totals as Markdown (report.md); BOPs in M, totals in M and G, footprints in KB.
/// `lead`: lines printed under the title (the run's quantizer and test top-1), before the table.
std::string cost_markdown(const CostReport& report, const std::string& title, const std::string& lead = "");
/// One JSON object with the totals and per-layer bits (for summary.json).
std::string cost_json(const CostReport& report);

}  // namespace saq::host
