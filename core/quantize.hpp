#pragma once
/// Per-layer bit-widths from [quantizer] (defaults, the first/last-layer policy, then [[quantizer.rule]] globs
/// in order, later rules winning, then the model's ties: a layer with bits_from() takes that layer's bits), and
/// quantizers attached to a model's layers.
#include <string>
#include <vector>

#include <saq/layers.hpp>
#include <saq/model.hpp>
#include <saq/params.hpp>
#include <saq/quantizer.hpp>

namespace saq::host {

/// [quantizer] keys the host reads besides the quantizer plugin's own.
Schema quantizer_host_schema();

/// Checks every bit-width of [quantizer] and its rules (2..8 or 32) and the rules' globs; an InputError names the key.
void check_bits(const Params& quantizer);

struct LayerBits {
  std::string name;
  int weight_bits = kFullPrecision, activation_bits = kFullPrecision;
  /// what set them: "default", "first layer", "last layer", "quantizer.rule[1] \"layer3.*\"", "tied to layer2.0.conv2"
  std::string source;
};

/// Resolves the bits of every quantizable layer of `model`. Bits outside 2..8/32 are an InputError naming the
/// key; a rule that matches no layer, or sets a tied layer but not the layer it follows, adds a warning naming
/// them. A tie to a missing layer, or a cycle of ties, throws std::invalid_argument.
std::vector<LayerBits> resolve_bits(Model& model, const Params& quantizer, std::vector<std::string>& warnings);

/// Applies the [[quantizer.rule]] tables of a TOML file (a search's result.toml) to `bits`, then the ties.
void apply_rules_file(Model& model, const std::string& file, std::vector<LayerBits>& bits,
                      std::vector<std::string>& warnings);
/// Gives every tied layer (bits_from) the bits of the layer it follows.
void apply_ties(Model& model, std::vector<LayerBits>& bits);
/// Indices (into quant_layers) of the layers a bit search decides: all but the first, the last and tied ones.
std::vector<size_t> searchable_layers(Model& model);
/// For each quantizable layer, the index of the layer whose bits it takes (itself when not tied).
std::vector<size_t> tie_sources(Model& model);

/// The quantizers attached to `layer` (weight, activation); null where none is.
std::pair<std::shared_ptr<TensorQuantizer>, std::shared_ptr<TensorQuantizer>> quantizers_of(QuantLayer& layer);

/// Attaches the plugin's quantizers to every layer that has none yet.
void attach_quantizers(Model& model, const Quantizer& quantizer);
/// Asks `quantizer` (named `name`) about every layer's resolved bits; the first it refuses is an InputError that
/// names the layer, its bits and where they came from.
void check_quantizer_bits(Model& model, const Quantizer& quantizer, const std::string& name,
                          const std::vector<LayerBits>& bits);
/// Sets each layer's bits; `full_precision` sets 32/32 everywhere (an FP32 stage).
void apply_bits(Model& model, const std::vector<LayerBits>& bits, bool full_precision);

/// The bits as a text table (logged at a stage start) and as lines "name = [w, a]" for bits.toml.
std::string bits_table(const std::vector<LayerBits>& bits);

}  // namespace saq::host
