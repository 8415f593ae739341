#pragma once
/// What the plugin tests share: components built as core/engine.cpp builds them, and error text.
/// Include first (it includes the suite's prelude, unit.hpp).
#include "unit.hpp"

#include <memory>
#include <string>

#include <ATen/ATen.h>

#include <saq/registrar.hpp>

#include "support.hpp"

namespace saq::test {

/// A validated pipeline with the given [data] and [model] tables (their TOML bodies, `use` included) and one
/// eval stage; nothing is built yet.
inline host::Pipeline eval_pipeline(const TempDir& dir, const std::string& data,
                                    const std::string& model = "use = \"small_cnn\"") {
  return pipeline_from_text(dir, "[data]\n" + data + "\n\n[model]\n" + model + "\n\n[[stage]]\nuse = \"eval\"\n");
}

inline std::shared_ptr<Dataset> make_dataset(const host::Pipeline& p) {
  const host::Registry& reg = registry();
  Context ctx;
  return reg.make<Dataset>(reg.require(Kind::Dataset, p.data->use(), "test"), *p.data, ctx);
}

inline std::shared_ptr<Model> make_model(const host::Pipeline& p, const DataInfo& info) {
  const host::Registry& reg = registry();
  Context ctx;
  ctx.data = info;
  return reg.make<Model>(reg.require(Kind::Model, p.model->use(), "test"), *p.model, ctx);
}

/// The message of what `f` throws, or "" when it returns.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// Pixels of a normalize = false batch back as bytes: x = byte / 255.
inline at::Tensor as_bytes(const at::Tensor& x) { return x.mul(255).round().to(at::kByte); }

/// Every batch of `split` in loader order (no shuffling), concatenated: x [N, C, H, W], y [N].
inline Batch whole_split(const Dataset& ds, const std::string& split) {
  LoaderSpec spec;
  spec.split = split;
  spec.train = false;
  spec.batch_size = 1000;
  auto loader = ds.loader(spec);
  std::vector<at::Tensor> xs, ys;
  Batch b;
  while (loader->next(b)) {
    xs.push_back(b.x);
    ys.push_back(b.y);
  }
  return {at::cat(xs), at::cat(ys)};
}

}  // namespace saq::test
