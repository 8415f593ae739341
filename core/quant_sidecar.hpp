#pragma once
/// model.quant.json, the sidecar of an exported graph: per quantizable layer its bits, integer types, scales, zero
/// points, code ranges and BOPs row, so that an integer runtime can be built without reading the ONNX file.
#include <string>
#include <vector>

#include "bops.hpp"
#include "onnx_model.hpp"
#include "onnx_trace.hpp"

namespace saq::host {

struct ExportOptions;

/// The sidecar's JSON text for `layers` as trace_to_onnx left them (folded scales included).
std::string quant_sidecar(const std::vector<LayerExport>& layers, const CostReport& costs, const onnx::Model& model,
                          const ExportOptions& options);

}  // namespace saq::host
