#pragma once
// What the search plugins share: random configurations, the supernet pass, the sharpness score, sampling
// inside the BOPs window with a cap.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <saq/sdk.hpp>

namespace saq::plugins {

/// One bit per layer from `choices`, uniformly, used for weights and activations alike.
BitConfig random_config(const SearchContext& ctx, SplitMix& rng);

/// Bits by layer name.
SearchResult to_result(const SearchContext& ctx, const BitConfig& config);

/// "w3a3 w4a4 …" (logs).
std::string config_text(const BitConfig& config);

/// One pass of the supernet over its split, one optimizer step per batch, each batch at the bits `pick` returns
/// for (step). Returns the mean training loss.
double supernet_epoch(SearchContext& ctx, Optimizer& opt, std::int64_t epoch,
                      const std::function<BitConfig(std::int64_t)>& pick);

/// The SAQ sharpness L(Q(w)+ε) − L(Q(w)) of `config` on the generator split (eval mode, gradients
/// accumulated over at most `batches` batches, 0 = the split); fills `clean` with L(Q(w)).
double sharpness_score(SearchContext& ctx, const BitConfig& config, double rho, std::int64_t batches,
                       double* clean = nullptr);

/// Draws from `sample` until `n` configurations lie inside [target − window, target], or `max_attempts` draws;
/// throws std::runtime_error "best BOPs seen X vs window [a, b]" when none did.
std::vector<BitConfig> sample_in_window(const SearchContext& ctx, const std::function<BitConfig()>& sample,
                                        std::int64_t n, std::int64_t max_attempts);

/// Adds the keys shared by the searches that score configurations (rho, score_batches).
void add_score_keys(Schema& s);

/// Adds the keys of the searches that train a supernet (clips, norms, perturb_searched) ...
void add_supernet_keys(Schema& s);
/// ... and reads them; `same_bits`: one width for weights and activations.
SupernetOptions supernet_options(const Params& p, bool same_bits);

}  // namespace saq::plugins
