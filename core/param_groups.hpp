#pragma once
/// The optimizer's parameter groups of a train stage: the default group, an optional no-decay group for norm
/// and bias parameters, and one per [[stage.group]] rule (a parameter joins the last rule whose glob matches).
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include <saq/optimizer.hpp>
#include <saq/params.hpp>

namespace saq::host {

/// Empty groups are dropped; a rule that matches nothing adds a warning naming it.
std::vector<ParamGroup> make_param_groups(const torch::nn::Module& model, const Params& stage,
                                          std::vector<std::string>& warnings);

}  // namespace saq::host
