#include "quantize.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "errors.hpp"
#include "host_schema.hpp"

namespace saq::host {

Schema quantizer_host_schema() {
  Schema s;
  s.integer("weight_bits", 4, "weight bits of every layer the policy or a rule does not set (2..8, 32 = none)");
  s.integer("activation_bits", 4, "input-activation bits of every layer not set otherwise (2..8, 32 = none)");
  s.integer("first_weight_bits", 8, "the first layer's weight bits (the paper: 8)");
  s.integer("first_activation_bits", 32, "the first layer's input bits (the paper: 32, the image is not quantized)");
  s.integer("last_weight_bits", 8, "the last layer's weight bits (the paper: 8)");
  s.integer("last_activation_bits", 8, "the last layer's input bits (the paper: 8)");
  Schema rule;
  rule.string("match", "", "glob on layer names, e.g. \"layer3.*\"").required();
  rule.integer("weight_bits", 4, "weight bits of the matching layers").optional();
  rule.integer("activation_bits", 4, "input bits of the matching layers").optional();
  s.tables("rule", rule, "per-layer rules ([[quantizer.rule]]), applied in order after the first/last policy");
  s.string("rules_file", "",
           "a TOML file of [[quantizer.rule]] tables (a search stage's search/result.toml), applied before the "
           "rules above");
  return s;
}

namespace {
int bits_of(const Params& p, const std::string& key) {
  auto v = p.get<std::int64_t>(key);
  if (!valid_bits(v)) p.fail(key, "must be 2..8, or 32 for full precision, got " + std::to_string(v));
  return static_cast<int>(v);
}
}  // namespace

void check_bits(const Params& q) {
  for (const char* key : {"weight_bits", "activation_bits", "first_weight_bits", "first_activation_bits",
                          "last_weight_bits", "last_activation_bits"})
    bits_of(q, key);
  for (const auto& rule : q.tables("rule")) {
    check_glob(*rule, "match");
    for (const char* key : {"weight_bits", "activation_bits"})
      if (rule->has(key)) bits_of(*rule, key);
  }
}

namespace {
/// For each layer, the index of the layer whose bits it takes: itself, or the end of its bits_from chain.
std::vector<size_t> tie_targets(const std::vector<std::pair<std::string, std::shared_ptr<QuantLayer>>>& layers) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < layers.size(); ++i) index[layers[i].first] = i;
  std::vector<size_t> out(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    size_t at = i;
    std::vector<size_t> seen{i};
    std::string chain = layers[i].first;
    while (!layers[at].second->bits_from().empty()) {
      const std::string& next = layers[at].second->bits_from();
      auto found = index.find(next);
      if (found == index.end())
        throw std::invalid_argument("layer '" + layers[at].first + "' takes its bits from '" + next +
                                    "', which is not a quantizable layer of the model");
      chain += " -> " + next;
      if (std::find(seen.begin(), seen.end(), found->second) != seen.end())
        throw std::invalid_argument("layers take their bits from each other: " + chain);
      seen.push_back(at = found->second);
    }
    out[i] = at;
  }
  return out;
}
}  // namespace

namespace {
struct Rule {
  std::string match, what;
  std::optional<int> weight_bits, activation_bits;
};

int checked_bits(std::int64_t v, const std::string& what) {
  if (!valid_bits(v)) throw InputError(what + ": must be 2..8, or 32 for full precision, got " + std::to_string(v));
  return static_cast<int>(v);
}

std::vector<Rule> rules_from_file(const std::string& file) {
  if (!std::filesystem::is_regular_file(file)) throw InputError("quantizer.rules_file: " + file + ": no such file");
  toml::table root;
  try {
    root = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    throw InputError("quantizer.rules_file: " + file + ":" + std::to_string(e.source().begin.line) + ": " +
                     std::string(e.description()));
  }
  const toml::array* rules = root["quantizer"]["rule"].as_array();
  if (!rules) throw InputError("quantizer.rules_file: " + file + ": no [[quantizer.rule]] tables");
  std::vector<Rule> out;
  for (size_t i = 0; i < rules->size(); ++i) {
    const toml::table* t = rules->get(i)->as_table();
    const std::string what = file + ": quantizer.rule[" + std::to_string(i) + "]";
    auto match = t ? (*t)["match"].value<std::string>() : std::nullopt;
    if (!match) throw InputError("quantizer.rules_file: " + what + ": needs a string 'match'");
    Rule r{*match, what + " \"" + *match + "\"", std::nullopt, std::nullopt};
    if (auto w = (*t)["weight_bits"].value<std::int64_t>()) r.weight_bits = checked_bits(*w, what + ".weight_bits");
    if (auto a = (*t)["activation_bits"].value<std::int64_t>())
      r.activation_bits = checked_bits(*a, what + ".activation_bits");
    out.push_back(r);
  }
  return out;
}

void apply_rules(const std::vector<size_t>& target, const std::vector<Rule>& rules, std::vector<LayerBits>& out,
                 std::vector<std::string>& warnings) {
  for (const auto& rule : rules) {
    auto matches = [&](const std::string& name) { return ::fnmatch(rule.match.c_str(), name.c_str(), 0) == 0; };
    bool hit = false;
    for (size_t i = 0; i < out.size(); ++i) {
      auto& b = out[i];
      if (!matches(b.name)) continue;
      hit = true;
      if (rule.weight_bits) b.weight_bits = *rule.weight_bits;
      if (rule.activation_bits) b.activation_bits = *rule.activation_bits;
      b.source = rule.what;
      // A rule that sets a tied layer but not the layer it follows has no effect on it: say so.
      if (target[i] != i && !matches(out[target[i]].name))
        warnings.push_back(rule.what + " sets " + b.name + ", whose bits follow " + out[target[i]].name +
                           "; the rule does not change it");
    }
    if (!hit) warnings.push_back(rule.what + " matches no layer");
  }
}
}  // namespace

std::vector<LayerBits> resolve_bits(Model& model, const Params& q, std::vector<std::string>& warnings) {
  auto layers = quant_layers(model);
  const std::vector<size_t> target = tie_targets(layers);
  std::vector<LayerBits> out;
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerBits b{layers[i].first, bits_of(q, "weight_bits"), bits_of(q, "activation_bits"), "default"};
    if (i == 0) b = {b.name, bits_of(q, "first_weight_bits"), bits_of(q, "first_activation_bits"), "first layer"};
    else if (i + 1 == layers.size())
      b = {b.name, bits_of(q, "last_weight_bits"), bits_of(q, "last_activation_bits"), "last layer"};
    out.push_back(b);
  }
  std::vector<Rule> rules;
  const std::string file = q.has("rules_file") ? q.get<std::string>("rules_file") : "";
  if (!file.empty()) rules = rules_from_file(file);
  for (const auto& rule : q.tables("rule")) {
    Rule r{rule->get<std::string>("match"), rule->section() + " \"" + rule->get<std::string>("match") + "\"",
           std::nullopt, std::nullopt};
    if (rule->has("weight_bits")) r.weight_bits = bits_of(*rule, "weight_bits");
    if (rule->has("activation_bits")) r.activation_bits = bits_of(*rule, "activation_bits");
    rules.push_back(r);
  }
  apply_rules(target, rules, out, warnings);
  apply_ties(model, out);
  return out;
}

void apply_ties(Model& model, std::vector<LayerBits>& bits) {
  auto layers = quant_layers(model);
  const std::vector<size_t> target = tie_targets(layers);
  for (size_t i = 0; i < bits.size() && i < layers.size(); ++i) {
    if (target[i] == i) continue;
    const LayerBits& t = bits[target[i]];
    bits[i] = {bits[i].name, t.weight_bits, t.activation_bits, "tied to " + layers[i].second->bits_from()};
  }
}

std::vector<size_t> searchable_layers(Model& model) {
  auto layers = quant_layers(model);
  std::vector<size_t> out;
  for (size_t i = 1; i + 1 < layers.size(); ++i)
    if (layers[i].second->bits_from().empty()) out.push_back(i);
  return out;
}

void apply_rules_file(Model& model, const std::string& file, std::vector<LayerBits>& bits,
                      std::vector<std::string>& warnings) {
  auto layers = quant_layers(model);
  apply_rules(tie_targets(layers), rules_from_file(file), bits, warnings);
  apply_ties(model, bits);
}

std::vector<size_t> tie_sources(Model& model) { return tie_targets(quant_layers(model)); }

namespace {
QuantLayerInfo layer_info(const std::vector<std::pair<std::string, std::shared_ptr<QuantLayer>>>& layers, size_t i) {
  const auto& layer = *layers[i].second;
  return QuantLayerInfo{layers[i].first, layer.is_conv(), layer.weight.sizes().vec(), layer.groups(), i == 0,
                        i + 1 == layers.size()};
}
}  // namespace

void check_quantizer_bits(Model& model, const Quantizer& quantizer, const std::string& name,
                          const std::vector<LayerBits>& bits) {
  auto layers = quant_layers(model);
  for (size_t i = 0; i < layers.size() && i < bits.size(); ++i) {
    if (bits[i].weight_bits == kFullPrecision && bits[i].activation_bits == kFullPrecision) continue;
    const std::string why = quantizer.refuse_bits(layer_info(layers, i), bits[i].weight_bits, bits[i].activation_bits);
    if (!why.empty())
      throw InputError(fmt::format("quantizer '{}' cannot quantize layer {} at w{}a{} (set by {}): {}", name,
                                   bits[i].name, bits[i].weight_bits, bits[i].activation_bits, bits[i].source, why));
  }
}

std::pair<std::shared_ptr<TensorQuantizer>, std::shared_ptr<TensorQuantizer>> quantizers_of(QuantLayer& layer) {
  std::pair<std::shared_ptr<TensorQuantizer>, std::shared_ptr<TensorQuantizer>> q;
  for (const auto& c : layer.named_children()) {
    if (c.key() == "weight_quantizer") q.first = std::dynamic_pointer_cast<TensorQuantizer>(c.value());
    if (c.key() == "activation_quantizer") q.second = std::dynamic_pointer_cast<TensorQuantizer>(c.value());
  }
  return q;
}

void attach_quantizers(Model& model, const Quantizer& quantizer) {
  auto layers = quant_layers(model);
  for (size_t i = 0; i < layers.size(); ++i) {
    auto& layer = *layers[i].second;
    if (layer.quantizable()) continue;
    const QuantLayerInfo info = layer_info(layers, i);
    auto wq = quantizer.weight_quantizer(info);
    auto aq = quantizer.activation_quantizer(info);
    wq->to(layer.weight.device());
    aq->to(layer.weight.device());
    layer.attach(wq, aq);
  }
}

void apply_bits(Model& model, const std::vector<LayerBits>& bits, bool full_precision) {
  auto layers = quant_layers(model);
  for (size_t i = 0; i < layers.size() && i < bits.size(); ++i) {
    if (full_precision) {
      if (layers[i].second->quantizable()) layers[i].second->set_bits(kFullPrecision, kFullPrecision);
    } else {
      layers[i].second->set_bits(bits[i].weight_bits, bits[i].activation_bits);
    }
  }
}

std::string bits_table(const std::vector<LayerBits>& bits) {
  std::string out = fmt::format("{:<32} {:>6} {:>6}  {}\n", "layer", "W", "A", "set by");
  for (const auto& b : bits)
    out += fmt::format("{:<32} {:>6} {:>6}  {}\n", b.name, b.weight_bits, b.activation_bits, b.source);
  return out;
}

}  // namespace saq::host
