#include "export_reference.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <tuple>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "errors.hpp"
#include "json.hpp"
#include "quantize.hpp"
#include "run_dir.hpp"

namespace saq::host {

namespace fs = std::filesystem;

namespace {

/// How many elements of y break the grid's promise for x, forward(x) = (clamp(round(x/s) + zp, qmin, qmax) − zp)·s,
/// by more than s/2, in double precision. One loop: as tensor ops it took eight double temporaries the size of the
/// activation, per layer (gigabytes of allocations for a MobileNetV2 at 32x32, most of an export's time).
std::int64_t count_off_grid(const at::Tensor& x, const at::Tensor& y, const ActivationExport& grid) {
  // float holds half and bfloat16 exactly; a double model stays double
  const at::ScalarType type = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor xc = x.to(at::kCPU, type).contiguous(), yc = y.to(at::kCPU, type).contiguous();
  const double zp = static_cast<double>(grid.zero_point), lo = static_cast<double>(grid.qmin),
               hi = static_cast<double>(grid.qmax);
  const auto count = [&](const auto* px, const auto* py) {
    std::int64_t off = 0;
    for (std::int64_t i = 0; i < xc.numel(); ++i) {
      // nearbyint: ties to even, as at::round
      const double t = std::clamp(std::nearbyint(static_cast<double>(px[i]) / grid.scale) + zp, lo, hi);
      off += std::abs(static_cast<double>(py[i]) - (t - zp) * grid.scale) > 0.5 * grid.scale;
    }
    return off;
  };
  return type == at::kDouble ? count(xc.data_ptr<double>(), yc.data_ptr<double>())
                             : count(xc.data_ptr<float>(), yc.data_ptr<float>());
}

/// Wraps a layer's activation quantizer: the same output, and its integer codes kept for the first samples.
class CaptureCodes final : public TensorQuantizer {
 public:
  CaptureCodes(std::shared_ptr<TensorQuantizer> inner, const ActivationExport& grid, std::int64_t keep)
      : inner_(std::move(inner)), grid_(grid), keep_(keep) {}
  at::Tensor forward(const at::Tensor& x, int bits) override {
    at::Tensor y = inner_->forward(x, bits);
    off_grid_ += count_off_grid(x, y, grid_);
    seen_ += y.numel();
    if (kept_ < keep_) {
      const std::int64_t n = std::min(keep_ - kept_, y.size(0));
      at::Tensor c = at::round(y.narrow(0, 0, n).to(at::kDouble) / grid_.scale) + static_cast<double>(grid_.zero_point);
      codes_.push_back(c.to(at::kShort).cpu());
      kept_ += n;
    }
    return y;
  }
  at::Tensor codes() const { return at::cat(codes_); }
  /// The fraction of elements where forward kept another value than its declared grid gives (ties aside: ~0).
  double off_grid() const { return seen_ ? static_cast<double>(off_grid_) / static_cast<double>(seen_) : 0.0; }

 private:
  std::shared_ptr<TensorQuantizer> inner_;
  ActivationExport grid_;
  std::int64_t keep_, kept_ = 0, off_grid_ = 0, seen_ = 0;
  std::vector<at::Tensor> codes_;
};

void write_raw(const fs::path& path, const at::Tensor& t) {
  const at::Tensor c = t.contiguous().cpu();
  write_atomically(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * c.element_size()));
    if (!out) throw RunError(tmp.string() + ": cannot write");
  });
}

std::string dims(at::IntArrayRef v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

/// The layers' activation quantizers wrapped in CaptureCodes while it lives; the first test samples run through.
class CapturedEval {
 public:
  CapturedEval(Session& s, const ExportSummary& exported, std::int64_t samples, std::int64_t code_samples) {
    LoaderSpec spec;
    spec.split = "test";
    spec.batch_size = s.pipeline.data->get<std::int64_t>("eval_batch_size");
    spec.train = false;
    auto loader = open_loader(s, spec);
    const std::int64_t n = samples > 0 ? std::min(samples, loader->num_samples()) : loader->num_samples();
    for (const LayerExport& l : exported.layers) {
      if (!l.quantized_activation) continue;
      Wrapped w{l.layer, nullptr, nullptr, nullptr, l.name};
      std::tie(w.weight, w.activation) = quantizers_of(*l.layer);
      w.capture = std::make_shared<CaptureCodes>(w.activation, l.activation, std::min(n, code_samples));
      l.layer->replace_quantizers(w.weight, w.capture);
      wrapped.push_back(std::move(w));
    }
    s.model->eval();
    at::NoGradGuard no_grad;
    Batch b;
    while (samples_ < n && next_batch(*loader, b)) {
      const std::int64_t k = std::min(n - samples_, b.x.size(0));
      at::Tensor x = b.x.narrow(0, 0, k).to(at::kFloat).contiguous();
      inputs.push_back(x);
      labels.push_back(b.y.narrow(0, 0, k).to(at::kLong));
      logits.push_back(s.model->forward(x.to(s.device)).to(at::kFloat).cpu());
      samples_ += k;
    }
    for (const auto& w : wrapped)
      if (w.capture->off_grid() > 1e-3)
        throw InputError(fmt::format("export: layer {}: its activation quantizer's outputs differ from the grid it "
                                     "declares (TensorQuantizer::grid: clamp(round(x/s) + zp, qmin, qmax)) on {:.1f}% "
                                     "of {} test inputs; the exported graph would compute something else",
                                     w.name, 100 * w.capture->off_grid(), samples_));
  }
  ~CapturedEval() {  // the layers get their own quantizers back, whatever happened
    for (auto& x : wrapped) x.layer->replace_quantizers(x.weight, x.activation);
  }
  CapturedEval(const CapturedEval&) = delete;
  CapturedEval& operator=(const CapturedEval&) = delete;
  std::int64_t samples() const { return samples_; }

  struct Wrapped {
    QuantLayer* layer;
    std::shared_ptr<TensorQuantizer> weight, activation;
    std::shared_ptr<CaptureCodes> capture;
    std::string name;
  };
  std::vector<Wrapped> wrapped;
  std::vector<at::Tensor> inputs, labels, logits;

 private:
  std::int64_t samples_ = 0;
};

}  // namespace

void check_activation_grids(Session& s, const ExportSummary& exported) {
  CapturedEval eval(s, exported, s.pipeline.data->get<std::int64_t>("eval_batch_size"), 0);
}

void write_reference(Session& s, const ExportSummary& exported, const fs::path& dir, std::int64_t samples) {
  constexpr std::int64_t kCodeSamples = 64;
  CapturedEval eval(s, exported, samples, kCodeSamples);
  const std::int64_t have = eval.samples(), m = std::min(have, kCodeSamples);
  auto& wrapped = eval.wrapped;
  auto& inputs = eval.inputs;
  // the graph with every quantized input's codes as an output
  onnx::Model check = exported.model;
  for (const LayerExport& l : exported.layers)
    if (l.quantized_activation)
      check.graph.outputs.push_back({l.name + ".input_codes", l.activation.as_float ? onnx::DType::Float : l.activation.type,
                                     {}, "", false});
  const at::Tensor all_logits = at::cat(eval.logits), all_labels = at::cat(eval.labels);
  const double top1 = 100.0 * all_logits.argmax(1).eq(all_labels).sum().item<double>() / static_cast<double>(have);

  fs::create_directories(dir / "codes");
  write_raw(dir / "input.f32", at::cat(inputs));
  write_raw(dir / "labels.i64", all_labels);
  write_raw(dir / "logits.f32", all_logits);
  const std::string graph = onnx::serialize(check);
  write_atomically(dir / "model.check.onnx", [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(graph.data(), static_cast<std::streamsize>(graph.size()));
  });
  std::string codes;
  for (const auto& w : wrapped) {
    const at::Tensor c = w.capture->codes();
    write_raw(dir / "codes" / (w.name + ".i16"), c);
    codes += fmt::format("{}{{\"layer\": {}, \"output\": {}, \"file\": {}, \"shape\": {}}}", codes.empty() ? "" : ", ",
                         JsonObject::quote(w.name), JsonObject::quote(w.name + ".input_codes"),
                         JsonObject::quote("codes/" + w.name + ".i16"), dims(c.sizes()));
  }
  JsonObject o;
  o.add("samples", have).add("code_samples", m).add("top1", top1);
  o.raw("input_shape", dims(inputs.front().sizes().slice(1))).add("classes", all_logits.size(1));
  o.raw("codes", "[" + codes + "]");
  write_text_atomically(dir / "reference.json", o.str() + "\n");
}

}  // namespace saq::host
