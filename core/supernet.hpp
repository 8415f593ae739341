#pragma once
/// A model turned into a switchable-bit supernet for one search stage (SearchContext::make_supernet), and given
/// its own quantizers and norms back when the stage ends.
#include <memory>
#include <utility>
#include <vector>

#include <saq/dataset.hpp>
#include <saq/layers.hpp>
#include <saq/model.hpp>
#include <saq/quantizer.hpp>
#include <saq/search.hpp>

namespace saq::host {

class SupernetScope {
 public:
  /// `searched`: indices into quant_layers(model) of the layers a search decides; `choices`: their bit choices.
  SupernetScope(Model& model, const Quantizer& quantizer, const DataInfo& info, std::vector<size_t> searched,
                std::vector<int> choices);
  ~SupernetScope() { restore(); }
  SupernetScope(const SupernetScope&) = delete;
  SupernetScope& operator=(const SupernetScope&) = delete;

  /// The searched layers and those tied to them get per-bit quantizers (each a copy of the layer's quantizer
  /// state) and the norms whose input they produce get per-bit-pair copies, as `o` asks.
  void build(const SupernetOptions& o);
  /// Undoes build (nothing when it did not run); the latent weights keep what was trained meanwhile.
  void restore() noexcept;

 private:
  Model& model_;
  const Quantizer& quantizer_;
  DataInfo info_;
  std::vector<size_t> searched_;
  std::vector<int> choices_;
  using QuantizerPair = std::pair<std::shared_ptr<TensorQuantizer>, std::shared_ptr<TensorQuantizer>>;
  std::vector<std::pair<std::shared_ptr<QuantLayer>, QuantizerPair>> replaced_;
  std::vector<std::shared_ptr<QuantLayer>> exempted_;
  std::vector<std::shared_ptr<BatchNorm2dLayer>> switched_;
};

}  // namespace saq::host
