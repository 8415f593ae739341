#pragma once
/// How a plugin hands its components to the host: typed factories, each with a parameter schema.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include <saq/collective.hpp>
#include <saq/dataset.hpp>
#include <saq/log.hpp>
#include <saq/model.hpp>
#include <saq/optimizer.hpp>
#include <saq/params.hpp>
#include <saq/quantizer.hpp>
#include <saq/search.hpp>

namespace saq {

struct Context;

/// Builds nested components by name (SAM builds its `base` optimizer this way). Implemented by the host.
class SAQ_VISIBLE Builder {
 public:
  virtual std::shared_ptr<Optimizer> optimizer(const Params& params, const Context& ctx) const = 0;

 protected:
  ~Builder() = default;
};

/// What a factory may use besides its parameters. Models read `data`; optimizers read `groups` and, to find
/// what a sharpness-aware step perturbs (quantizable layers, norm layers, clip values), `model`.
struct Context {
  c10::Device device = c10::Device(c10::kCPU);
  const Log* log = nullptr;
  const Builder* build = nullptr;
  DataInfo data;
  std::vector<ParamGroup> groups;
  std::uint64_t seed = 0;
  std::shared_ptr<Model> model;
  /// The ranks of a data-parallel run; null in a single process. Optimizers average gradients through it.
  Collective* collective = nullptr;
};

template <class I>
using Factory = std::unique_ptr<I> (*)(const Params&, const Context&);

/// A component as the host lists it.
struct ComponentDesc {
  std::string name;
  std::string description;
  Kind kind;
  Schema schema;
};

/// Passed to a plugin's registration block; never a static. T must have `static Schema schema()` and a
/// constructor T(const Params&, const Context&).
class SAQ_VISIBLE Registrar {
 public:
  template <class T>
  void add(const std::string& name, const std::string& description) {
    using I = typename T::Interface;
    Factory<I> make = [](const Params& p, const Context& c) -> std::unique_ptr<I> { return std::make_unique<T>(p, c); };
    put(ComponentDesc{name, description, I::kind, T::schema()}, make);
  }

 protected:
  ~Registrar() = default;
  virtual void put(ComponentDesc desc, Factory<Dataset> make) = 0;
  virtual void put(ComponentDesc desc, Factory<Model> make) = 0;
  virtual void put(ComponentDesc desc, Factory<Optimizer> make) = 0;
  virtual void put(ComponentDesc desc, Factory<Quantizer> make) = 0;
  virtual void put(ComponentDesc desc, Factory<Search> make) = 0;
};

}  // namespace saq
