#include <saq/state.hpp>

#include <map>
#include <stdexcept>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

namespace saq {

namespace {

template <class T>
constexpr const char* name_of() {
  if constexpr (std::is_same_v<T, at::Tensor>) return "tensor";
  else if constexpr (std::is_same_v<T, std::int64_t>) return "int";
  else if constexpr (std::is_same_v<T, double>) return "float";
  else if constexpr (std::is_same_v<T, bool>) return "bool";
  else if constexpr (std::is_same_v<T, std::string>) return "str";
  else return "dict";
}

std::string listed(const char* what, const std::vector<std::string>& names) {
  if (names.empty()) return "";
  std::string out = std::string("; ") + what + " (" + std::to_string(names.size()) + "): ";
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out;
}

}  // namespace

const char* type_name(const StateValue& value) {
  return std::visit([](const auto& v) { return name_of<std::decay_t<decltype(v)>>(); }, value);
}

void StateDict::put(const std::string& key, StateValue value) {
  for (auto& [k, v] : entries_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  entries_.emplace_back(key, std::move(value));
}

void StateDict::put_tensor(const std::string& key, const at::Tensor& value) { put(key, value); }
void StateDict::put_int(const std::string& key, std::int64_t value) { put(key, value); }
void StateDict::put_real(const std::string& key, double value) { put(key, value); }
void StateDict::put_bool(const std::string& key, bool value) { put(key, value); }
void StateDict::put_text(const std::string& key, std::string value) { put(key, std::move(value)); }

StateDict& StateDict::child(const std::string& key) {
  for (auto& [k, v] : entries_)
    if (k == key && std::holds_alternative<std::shared_ptr<StateDict>>(v)) return *std::get<std::shared_ptr<StateDict>>(v);
  // "file.pt: optimizer", then "file.pt: optimizer.groups"
  auto nested = std::make_shared<StateDict>(where_ + (where_.find(": ") == std::string::npos ? ": " : ".") + key);
  put(key, nested);
  return *nested;
}

bool StateDict::has(const std::string& key) const {
  for (const auto& [k, v] : entries_)
    if (k == key) return true;
  return false;
}

const StateValue& StateDict::at(const std::string& key, const char* type) const {
  for (const auto& [k, v] : entries_) {
    if (k != key) continue;
    if (std::string(type_name(v)) != type)
      throw std::runtime_error(where_ + ": '" + key + "' is a " + type_name(v) + ", not a " + type);
    return v;
  }
  throw std::runtime_error(where_ + ": '" + key + "' is missing");
}

const at::Tensor& StateDict::tensor(const std::string& key) const { return std::get<at::Tensor>(at(key, "tensor")); }
std::int64_t StateDict::integer(const std::string& key) const { return std::get<std::int64_t>(at(key, "int")); }
double StateDict::real(const std::string& key) const {
  // write_state writes a float as a 0-d float64 tensor (PyTorch 1.13's weights_only reader has no float opcode)
  for (const auto& [k, v] : entries_)
    if (const auto* t = std::get_if<at::Tensor>(&v); k == key && t && t->dim() == 0 && t->scalar_type() == at::kDouble)
      return t->item<double>();
  return std::get<double>(at(key, "float"));
}
bool StateDict::boolean(const std::string& key) const { return std::get<bool>(at(key, "bool")); }
const std::string& StateDict::text(const std::string& key) const { return std::get<std::string>(at(key, "str")); }
const StateDict& StateDict::child(const std::string& key) const {
  return *std::get<std::shared_ptr<StateDict>>(at(key, "dict"));
}

StateDict module_state(const torch::nn::Module& module) {
  StateDict out;
  for (const auto& p : module.named_parameters(true)) out.put_tensor(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) out.put_tensor(b.key(), b.value());
  return out;
}

void load_module_state(torch::nn::Module& module, const StateDict& state) {
  std::map<std::string, const at::Tensor*> file;
  std::vector<std::string> missing, unexpected, different;
  for (const auto& [k, v] : state.entries()) {
    if (const auto* t = std::get_if<at::Tensor>(&v)) file[k] = t;
    else different.push_back(k + ": a " + type_name(v) + ", not a tensor");
  }
  std::vector<std::pair<at::Tensor, const at::Tensor*>> copies;
  auto match = [&](const std::string& name, const at::Tensor& target) {
    auto it = file.find(name);
    if (it == file.end()) return missing.push_back(name);
    const at::Tensor& t = *it->second;
    if (t.sizes() != target.sizes() || t.scalar_type() != target.scalar_type())
      different.push_back(name + ": " + std::string(c10::toString(t.scalar_type())) + c10::str(t.sizes()) + " in the file, " +
                          c10::toString(target.scalar_type()) + c10::str(target.sizes()) + " in the model");
    else copies.emplace_back(target, &t);
    file.erase(it);
  };
  for (const auto& p : module.named_parameters(true)) match(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) match(b.key(), b.value());
  for (const auto& [k, t] : file) unexpected.push_back(k);
  if (!missing.empty() || !unexpected.empty() || !different.empty())
    throw std::runtime_error(state.where() + ": does not match the model" + listed("missing", missing) +
                             listed("unexpected", unexpected) + listed("different", different));
  at::NoGradGuard no_grad;
  for (auto& [target, from] : copies) target.copy_(*from);
}

}  // namespace saq
