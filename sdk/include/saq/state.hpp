#pragma once
/// A saved state: names mapped to tensors, plain values and nested states, in insertion order. Optimizers,
/// searches and the host save into one and restore from one; on disk it is a dict that Python's
/// `torch.load(path, weights_only=True)` opens (read_state / write_state in torch_file.hpp).
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <ATen/core/Tensor.h>

#include <saq/abi.hpp>

namespace torch::nn {
class Module;
}

namespace saq {

class StateDict;
using StateValue = std::variant<at::Tensor, std::int64_t, double, bool, std::string, std::shared_ptr<StateDict>>;

class SAQ_VISIBLE StateDict {
 public:
  /// `where` names the state in messages ("runs/a/checkpoints/resume.pt: optimizer").
  explicit StateDict(std::string where = "state") : where_(std::move(where)) {}

  /// Each adds `key`, or replaces its value.
  void put_tensor(const std::string& key, const at::Tensor& value);
  void put_int(const std::string& key, std::int64_t value);
  void put_real(const std::string& key, double value);
  void put_bool(const std::string& key, bool value);
  void put_text(const std::string& key, std::string value);
  /// The nested state under `key`, made (empty) when absent.
  StateDict& child(const std::string& key);

  bool has(const std::string& key) const;
  /// Typed reads; std::runtime_error "<where>: '<key>' is missing" or "... is a <type>, not a <type>".
  const at::Tensor& tensor(const std::string& key) const;
  std::int64_t integer(const std::string& key) const;
  double real(const std::string& key) const;
  bool boolean(const std::string& key) const;
  const std::string& text(const std::string& key) const;
  const StateDict& child(const std::string& key) const;

  const std::vector<std::pair<std::string, StateValue>>& entries() const { return entries_; }
  const std::string& where() const { return where_; }
  std::size_t size() const { return entries_.size(); }

 private:
  const StateValue& at(const std::string& key, const char* type) const;
  void put(const std::string& key, StateValue value);
  std::string where_;
  std::vector<std::pair<std::string, StateValue>> entries_;
};

/// "tensor", "int", "float", "bool", "str" or "dict".
SAQ_VISIBLE const char* type_name(const StateValue& value);

/// Every parameter and buffer of `module` under PyTorch's dotted names (the tensors themselves, not copies).
SAQ_VISIBLE StateDict module_state(const torch::nn::Module& module);

/// Copies `state` into `module`: the same names, shapes and dtypes exactly, or std::runtime_error listing what
/// is missing, unexpected or different, before anything is copied. Tensors move to each parameter's device.
SAQ_VISIBLE void load_module_state(torch::nn::Module& module, const StateDict& state);

}  // namespace saq
