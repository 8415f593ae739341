#pragma once
/// Search plugins: mixed-precision bit searches. The host runs a `search` stage: it hands the search a
/// SearchContext (the model with quantizers attached, the layers to decide, the bit choices, a BOPs count,
/// loaders over the two halves of the training split, a supernet optimizer) and applies the bits it returns.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <c10/core/Device.h>

#include <saq/collective.hpp>
#include <saq/dataset.hpp>
#include <saq/log.hpp>
#include <saq/model.hpp>
#include <saq/optimizer.hpp>
#include <saq/params.hpp>

namespace saq {

/// (weight bits, activation bits) of one layer.
using LayerBitPair = std::pair<int, int>;
/// One bit pair per searchable layer, in SearchContext::layers order.
using BitConfig = std::vector<LayerBitPair>;
/// What a search returns: bits by layer name (every searchable layer).
using SearchResult = std::map<std::string, LayerBitPair>;

/// How a search's supernet differs from the model it starts from (SearchContext::make_supernet).
struct SupernetOptions {
  bool per_bit_clips = true;  ///< each searched layer keeps one quantizer (clip values) per bit choice, else shares one
  bool switchable_norms = true;  ///< a BatchNorm after a searched layer keeps one copy per bit pair, else shares one
  bool same_bits = true;         ///< weights and activations take one width: norm copies for (b, b) only
  /// Sharpness-aware steps perturb the searched layers too. false reproduces the paper's released search code,
  /// whose perturbation skipped its switchable convolutions (only stem, classifier and norms got ε).
  bool perturb_searched = true;
};

/// Everything a search may use; filled by the host.
struct SearchContext {
  std::shared_ptr<Model> model;     ///< quantizers attached, bits of the non-searched layers applied
  std::vector<std::string> layers;  ///< searchable: quantizable layers but the first, the last and tied ones
  std::vector<int> bit_choices;     ///< e.g. {2, 3, 4, 5}
  double target_mbops = 0;          ///< the BOPs budget, in millions
  double window_mbops = 0;          ///< accepted window [target − window, target]
  /// The model's MBOPs with `config` on the searchable layers (ties follow), the rest at their resolved bits.
  std::function<double(const BitConfig&)> mbops;
  /// Sets `config` on the model's layers (and on the layers tied to them) for the next forward.
  std::function<void(const BitConfig&)> apply;
  /// Fresh training loaders (shuffled, augmented) over the supernet half and the generator half of the split.
  std::function<std::unique_ptr<Loader>()> supernet_loader, generator_loader;
  std::int64_t limit_batches = 0;  ///< at most this many batches per pass (0 = all)
  /// Turns the model into a switchable-bit supernet for the rest of the stage: the searched layers and the layers
  /// tied to them get per-bit quantizers (copies of their current state), the norms they feed per-bit copies.
  /// Call it before make_optimizer and before loading saved state. The host gives the model its own quantizers
  /// and norms back when the stage ends; the shared latent weights keep what the search trained.
  std::function<void(const SupernetOptions&)> make_supernet;
  /// The supernet optimizer (from the stage's or the pipeline's optimizer, built over the model's parameters).
  std::function<std::shared_ptr<Optimizer>()> make_optimizer;
  /// The learning-rate factor of the supernet schedule at (epoch, step).
  std::function<double(std::int64_t, std::int64_t)> lr_factor;
  /// Per-sample training loss [B] of logits [B, K] against labels [B].
  std::function<at::Tensor(const at::Tensor&, const at::Tensor&)> loss;
  /// Appends one metrics line: split name and values (the host adds the stage).
  std::function<void(const std::string&, const std::vector<std::pair<std::string, double>>&)> record;
  const Log* log = nullptr;
  c10::Device device = c10::Device(c10::kCPU);
  std::uint64_t seed = 0;
  std::int64_t epochs = 1;
  /// Call after each epoch, once the state is saved: the host stops the run here when it was interrupted (the
  /// search resumes from state_file when the stage runs again).
  std::function<void()> epoch_end;
  /// A file the search may keep its state in, to resume an interrupted search ("" = do not keep state). In a
  /// data-parallel run every rank reads it and the logging rank alone writes it.
  std::string state_file;
  /// The ranks of a data-parallel run (null in one process). The loaders above give each rank its share of every
  /// batch and the supernet optimizer averages gradients; a search keeps its decisions identical on every rank
  /// (the same draws, rewards averaged over the ranks).
  Collective* collective = nullptr;
};

class SAQ_VISIBLE Search {
 public:
  static constexpr Kind kind = Kind::Search;
  using Interface = Search;
  virtual ~Search() = default;
  /// Runs the search; throws std::runtime_error with the numbers when no configuration fits the budget.
  virtual SearchResult run(SearchContext& ctx) = 0;
};

/// Clean and perturbed mean loss over some batches.
struct SharpnessMeasure {
  double clean = 0, perturbed = 0;
  double sharpness() const { return perturbed - clean; }
};

/// The SAQ sharpness criterion at the model's current bits, in the model's current mode: the clean loss of
/// each batch is back-propagated to the quantized weights and the gradients summed over all batches, then
/// ε = ρ·g/‖g‖ is added to the quantized weight of every layer that is perturbed() and the perturbed loss measured on the same batches.
/// `batches` yields the next batch (false at the end) after `restart()`; at most `limit` batches (0 = all).
/// With `collective`, each rank measures its own batches and the gradient and loss sums are summed over the
/// ranks, so every rank returns the same measure (of all the ranks' samples).
SAQ_VISIBLE SharpnessMeasure measure_sharpness(Model& model, const std::function<void()>& restart,
                                               const std::function<bool(Batch&)>& batches,
                                               const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>& loss,
                                               double rho, c10::Device device, std::int64_t limit = 0,
                                               Collective* collective = nullptr);

}  // namespace saq
