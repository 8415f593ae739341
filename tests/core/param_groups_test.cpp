// A train stage's parameter groups: the default group, the no-decay group, and [[stage.group]] glob rules.
#include "unit.hpp"

#include <memory>
#include <string>
#include <vector>

#include <saq/layers.hpp>

#include "host_schema.hpp"
#include "param_groups.hpp"

namespace saq::host {

namespace {

/// conv1.weight [4, 1, 3, 3], bn1.weight [4], bn1.bias [4], fc.weight [2, 4], fc.bias [2].
struct Net : torch::nn::Module {
  Net() {
    conv1 = conv2d(*this, "conv1", {1, 4, 3, 1, 1, 1, false});
    bn1 = batch_norm2d(*this, "bn1", 4);
    fc = linear(*this, "fc", 4, 2);
  }
  std::shared_ptr<Conv2dLayer> conv1;
  std::shared_ptr<BatchNorm2dLayer> bn1;
  std::shared_ptr<LinearLayer> fc;
};

struct Rule {
  std::string match;
  std::optional<double> lr, weight_decay;
};

Params stage_with(bool decay_norm_and_bias, const std::vector<Rule>& rules) {
  Params p("stage[0]", "train", "test");
  const Schema schema = stage_schema("train");
  for (const auto& s : schema.specs())
    if (s.fallback) p.set(s.name, *s.fallback, "default");
  p.set("decay_norm_and_bias", decay_norm_and_bias, "test");
  std::vector<ParamsPtr> tables;
  for (size_t i = 0; i < rules.size(); ++i) {
    auto t = std::make_shared<Params>("stage[0].group[" + std::to_string(i) + "]", "", "test");
    t->set("match", rules[i].match, "test");
    if (rules[i].lr) t->set("lr", *rules[i].lr, "test");
    if (rules[i].weight_decay) t->set("weight_decay", *rules[i].weight_decay, "test");
    tables.push_back(t);
  }
  p.set("group", tables, "test");
  return p;
}

/// Whether `group` holds exactly `expected`, in order (the order of named_parameters()).
bool holds(const ParamGroup& group, const std::vector<at::Tensor>& expected) {
  if (group.params.size() != expected.size()) return false;
  for (size_t i = 0; i < expected.size(); ++i)
    if (!group.params[i].is_same(expected[i])) return false;
  return true;
}

}  // namespace

TEST_CASE("with decay on norm and bias and no rules, one default group holds every parameter") {
  Net net;
  std::vector<std::string> warnings;
  auto groups = make_param_groups(net, stage_with(true, {}), warnings);
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].name == "default");
  CHECK(holds(groups[0], {net.conv1->weight, net.bn1->weight, net.bn1->bias, net.fc->weight, net.fc->bias}));
  CHECK_FALSE(groups[0].lr.has_value());
  CHECK_FALSE(groups[0].weight_decay.has_value());
  CHECK(warnings.empty());
}

TEST_CASE("without decay on norm and bias, the 1-d parameters form a group with weight decay 0") {
  Net net;
  std::vector<std::string> warnings;
  auto groups = make_param_groups(net, stage_with(false, {}), warnings);
  REQUIRE(groups.size() == 2);
  CHECK(holds(groups[0], {net.conv1->weight, net.fc->weight}));
  CHECK(groups[1].name == "norm_and_bias");
  CHECK(holds(groups[1], {net.bn1->weight, net.bn1->bias, net.fc->bias}));
  CHECK(groups[1].weight_decay == 0.0);
}

TEST_CASE("a parameter joins the last rule whose glob matches it, with that rule's overrides") {
  Net net;
  std::vector<std::string> warnings;
  auto groups = make_param_groups(net, stage_with(false, {{"*.bias", 0.5, std::nullopt}, {"bn1.*", std::nullopt, 0.2}}),
                                  warnings);
  REQUIRE(groups.size() == 3);  // default, rule 0, rule 1 (norm_and_bias is left empty and dropped)
  CHECK(holds(groups[0], {net.conv1->weight, net.fc->weight}));
  CHECK(groups[1].name == "stage[0].group[0] \"*.bias\"");
  CHECK(holds(groups[1], {net.fc->bias}));  // bn1.bias matches both rules: the later one wins
  CHECK(groups[1].lr == 0.5);
  CHECK_FALSE(groups[1].weight_decay.has_value());
  CHECK(holds(groups[2], {net.bn1->weight, net.bn1->bias}));
  CHECK(groups[2].weight_decay == 0.2);
  CHECK(warnings.empty());
}

TEST_CASE("a rule that matches nothing is dropped with a warning naming it") {
  Net net;
  std::vector<std::string> warnings;
  auto groups = make_param_groups(net, stage_with(true, {{"layer9.*", 0.1, std::nullopt}}), warnings);
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].name == "default");
  CHECK(warnings == std::vector<std::string>{"stage[0].group[0] \"layer9.*\" matches no parameter"});
}

}  // namespace saq::host
