#pragma once
/// What the model-zoo tests share: a registered model built for a data shape, its state_dict entries in PyTorch's
/// order, and the reference files of tests/data/models (written from torchvision by make_fixtures.py there).
/// Include first (it includes plugin_test.hpp and so the suite's prelude).
#include "plugin_test.hpp"

#include <sstream>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

namespace saq::test {

inline const DataInfo kImageNet{{3, 224, 224}, 1000, {}};
inline const DataInfo kCifar100{{3, 32, 32}, 100, {}};

/// The model `use` (with extra [model] keys) for `info`, as the engine builds it; no quantizer attached.
inline std::shared_ptr<Model> zoo_model(const std::string& use, const DataInfo& info, const std::string& keys = "") {
  TempDir dir;
  return make_model(eval_pipeline(dir, "use = \"synthetic\"", "use = \"" + use + "\"\n" + keys), info);
}

using Lines = std::vector<std::pair<std::string, std::string>>;

/// tests/data/models/<file>, one "name value" pair per line.
inline Lines reference(const std::string& file) {
  std::istringstream in(read_file(std::filesystem::path(env("SAQ_SOURCE_ROOT")) / "tests/data/models" / file));
  Lines out;
  for (std::string name, value; in >> name >> value;) out.emplace_back(name, value);
  REQUIRE_MESSAGE(!out.empty(), "empty reference file " << file);
  return out;
}

inline std::string shape_text(const at::Tensor& t) {
  std::string out;
  for (auto d : t.sizes()) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out.empty() ? "-" : out;
}

/// "name shape" of every state_dict entry in PyTorch's order: modules in pre-order, each module's own parameters
/// before its own buffers.
inline Lines state_dict_shapes(const torch::nn::Module& model) {
  Lines out;
  for (const auto& m : model.named_modules("", /*include_self=*/true)) {
    const std::string prefix = m.key().empty() ? "" : m.key() + ".";
    for (const auto& p : m.value()->named_parameters(/*recurse=*/false))
      out.emplace_back(prefix + p.key(), shape_text(p.value()));
    for (const auto& b : m.value()->named_buffers(/*recurse=*/false))
      out.emplace_back(prefix + b.key(), shape_text(b.value()));
  }
  return out;
}

inline std::int64_t count_parameters(const torch::nn::Module& m) {
  std::int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace saq::test
