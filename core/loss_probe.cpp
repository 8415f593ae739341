#include "loss_probe.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "quantize.hpp"

namespace saq::host {

const char* target_name(PerturbTarget t) { return t == PerturbTarget::Quantized ? "quantized" : "latent"; }

namespace {

/// The layer's weight quantizer, plus ε: what the op consumes is Qw(w) + ε, with ε in the graph (the layer's own
/// set_perturbation detaches it).
class PlusPerturbation final : public TensorQuantizer {
 public:
  PlusPerturbation(std::shared_ptr<TensorQuantizer> inner, at::Tensor eps) : inner_(std::move(inner)), eps_(std::move(eps)) {}
  at::Tensor forward(const at::Tensor& w, int bits) override { return inner_->forward(w, bits) + eps_; }

 private:
  std::shared_ptr<TensorQuantizer> inner_;
  at::Tensor eps_;
};

/// Applies a perturbation to the layers while it lives: on a quantized weight after its quantizer, on a latent
/// (or full-precision) weight before.
class Applied {
 public:
  Applied(const std::vector<std::shared_ptr<QuantLayer>>& layers, const std::vector<at::Tensor>& weights,
          const std::vector<at::Tensor>& delta, PerturbTarget target)
      : layers_(layers), weights_(weights) {
    for (size_t i = 0; i < layers.size(); ++i) {
      QuantLayer& l = *layers[i];
      if (target == PerturbTarget::Quantized && l.quantizable() && l.weight_bits() != kFullPrecision) {
        auto [w, a] = quantizers_of(l);
        l.replace_quantizers(std::make_shared<PlusPerturbation>(w, delta[i]), a);
        swapped_.push_back({i, w});
      } else {
        l.weight = weights[i] + delta[i];  // forward reads the member: the parameter stays as it was
      }
    }
  }
  ~Applied() {
    for (const auto& [i, w] : swapped_) layers_[i]->replace_quantizers(w, quantizers_of(*layers_[i]).second);
    for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->weight = weights_[i];
  }
  Applied(const Applied&) = delete;
  Applied& operator=(const Applied&) = delete;

 private:
  const std::vector<std::shared_ptr<QuantLayer>>& layers_;
  const std::vector<at::Tensor>& weights_;
  std::vector<std::pair<size_t, std::shared_ptr<TensorQuantizer>>> swapped_;
};


}  // namespace

LossProbe::LossProbe(Model& model, std::vector<Batch> batches, PerturbTarget target)
    : model_(model), batches_(std::move(batches)), target_(target) {
  for (const auto& [name, layer] : quant_layers(model)) {
    layers_.push_back(layer);
    weights_.push_back(layer->weight);
    names_.push_back(name);
  }
  for (const auto& b : batches_) samples_ += b.y.size(0);
}

std::vector<at::Tensor> LossProbe::zeros() const {
  std::vector<at::Tensor> z;
  for (const auto& w : weights_) z.push_back(at::zeros_like(w).detach());
  return z;
}

std::int64_t LossProbe::weight_count() const {
  std::int64_t n = 0;
  for (const auto& w : weights_) n += w.numel();
  return n;
}

at::Tensor LossProbe::batch_loss(std::size_t b) const {
  const at::Tensor& x = batches_[b].x;
  const at::Tensor& first = weights_.front();
  const at::Tensor logits = model_.forward(x.to(first.device(), first.scalar_type()));
  return at::cross_entropy_loss(logits, batches_[b].y.to(first.device()));
}

double LossProbe::loss(const std::vector<at::Tensor>& delta, long batch) const {
  model_.eval();
  at::NoGradGuard no_grad;
  Applied applied(layers_, weights_, delta, target_);
  if (batch >= 0) return batch_loss(static_cast<std::size_t>(batch)).item<double>();
  double sum = 0;
  for (std::size_t b = 0; b < batches_.size(); ++b)
    sum += batch_loss(b).item<double>() * static_cast<double>(batches_[b].y.size(0));
  return sum / static_cast<double>(samples_);
}

std::vector<at::Tensor> LossProbe::gradient(const std::vector<at::Tensor>& delta, long batch) const {
  model_.eval();
  std::vector<at::Tensor> leaves, grad;
  for (const auto& d : delta) leaves.push_back(d.detach().clone().requires_grad_(true)), grad.push_back(at::zeros_like(d));
  // the latent weights' own gradients are not wanted: only the perturbation's
  std::vector<bool> rg;
  for (auto& p : model_.parameters()) rg.push_back(p.requires_grad()), p.requires_grad_(false);
  struct Restore {
    Model& m;
    std::vector<bool>& rg;
    ~Restore() {
      size_t k = 0;
      for (auto& p : m.parameters()) p.requires_grad_(rg[k++]);
    }
  } restore{model_, rg};
  Applied applied(layers_, weights_, leaves, target_);
  const std::size_t first = batch >= 0 ? static_cast<std::size_t>(batch) : 0;
  const std::size_t last = batch >= 0 ? first + 1 : batches_.size();
  const double n = batch >= 0 ? static_cast<double>(batches_[first].y.size(0)) : static_cast<double>(samples_);
  for (std::size_t b = first; b < last; ++b) {
    const at::Tensor l = batch_loss(b) * (static_cast<double>(batches_[b].y.size(0)) / n);
    const auto g = torch::autograd::grad({l}, leaves, {}, false, false, true);
    for (size_t i = 0; i < g.size(); ++i)
      if (g[i].defined()) grad[i].add_(g[i]);
  }
  return grad;
}

Objective LossProbe::objective() const {
  Objective f;
  f.params = zeros();
  for (auto& p : f.params) p.requires_grad_(true);
  f.terms = batches_.size();
  f.term = [this, params = f.params](std::size_t b) {
    model_.eval();
    Applied applied(layers_, weights_, params, target_);
    return batch_loss(b) * (static_cast<double>(batches_[b].y.size(0)) / static_cast<double>(samples_));
  };
  return f;
}

std::int64_t LossProbe::level_changes(const std::vector<at::Tensor>& delta) const {
  model_.eval();
  at::NoGradGuard no_grad;
  std::int64_t changed = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    auto q = quantizers_of(*layers_[i]).first;
    const int bits = layers_[i]->weight_bits();
    if (!q || bits == kFullPrecision) continue;
    changed += q->forward(weights_[i] + delta[i], bits).ne(q->forward(weights_[i], bits)).sum().item<std::int64_t>();
  }
  return changed;
}

DoublePrecision::DoublePrecision(Model& model) : model_(model) { model_.to(at::kDouble); }
DoublePrecision::~DoublePrecision() { model_.to(at::kFloat); }

}  // namespace saq::host
