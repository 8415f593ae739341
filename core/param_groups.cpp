#include "param_groups.hpp"

#include <fnmatch.h>

namespace saq::host {

std::vector<ParamGroup> make_param_groups(const torch::nn::Module& model, const Params& stage,
                                          std::vector<std::string>& warnings) {
  const bool decay_all = stage.get<bool>("decay_norm_and_bias");
  const auto& rules = stage.tables("group");
  std::vector<ParamGroup> groups;
  groups.push_back({"default", {}, std::nullopt, std::nullopt});
  groups.push_back({"norm_and_bias", {}, std::nullopt, 0.0});
  for (const auto& r : rules) {
    ParamGroup g{r->section() + " \"" + r->get<std::string>("match") + "\"", {}, std::nullopt, std::nullopt};
    if (r->has("lr")) g.lr = r->get<double>("lr");
    if (r->has("weight_decay")) g.weight_decay = r->get<double>("weight_decay");
    groups.push_back(g);
  }
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    size_t target = !decay_all && item.value().dim() <= 1 ? 1 : 0;
    for (size_t i = 0; i < rules.size(); ++i)
      if (::fnmatch(rules[i]->get<std::string>("match").c_str(), item.key().c_str(), 0) == 0) target = 2 + i;
    groups[target].params.push_back(item.value());
  }
  std::vector<ParamGroup> used;
  for (size_t i = 0; i < groups.size(); ++i) {
    if (!groups[i].params.empty()) used.push_back(groups[i]);
    else if (i >= 2) warnings.push_back(groups[i].name + " matches no parameter");
  }
  return used;
}

}  // namespace saq::host
