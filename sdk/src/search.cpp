#include <saq/search.hpp>

#include <cmath>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <saq/layers.hpp>

namespace saq {

SharpnessMeasure measure_sharpness(Model& model, const std::function<void()>& restart,
                                   const std::function<bool(Batch&)>& batches,
                                   const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>& loss,
                                   double rho, c10::Device device, std::int64_t limit, Collective* collective) {
  TORCH_CHECK(rho >= 0, "measure_sharpness: rho must be >= 0, got ", rho);
  auto layers = quant_layers(model);
  std::vector<at::Tensor> sums(layers.size());
  SharpnessMeasure m;
  double clean_sum = 0;
  std::int64_t samples = 0, n = 0;
  restart();
  Batch b;
  while ((limit == 0 || n < limit) && batches(b)) {
    at::AutoGradMode grad_mode(true);
    at::Tensor x = b.x.to(device), y = b.y.to(device);
    at::Tensor per_sample = loss(model.forward(x), y);
    std::vector<at::Tensor> inputs;
    std::vector<size_t> at;  // the layers a sharpness-aware step perturbs, with a quantized weight in the graph
    for (size_t i = 0; i < layers.size(); ++i)
      if (layers[i].second->perturbed() && layers[i].second->quantized_weight().requires_grad()) {
        inputs.push_back(layers[i].second->quantized_weight());
        at.push_back(i);
      }
    std::vector<at::Tensor> grads;
    if (!inputs.empty())
      grads = torch::autograd::grad({per_sample.mean()}, inputs, {}, false, false, /*allow_unused=*/true);
    for (size_t k = 0; k < grads.size(); ++k)
      if (grads[k].defined()) sums[at[k]] = sums[at[k]].defined() ? sums[at[k]] + grads[k] : grads[k];
    clean_sum += per_sample.detach().sum().item<double>();
    samples += y.size(0);
    ++n;
  }
  const bool ranks = collective && collective->world_size() > 1;
  if (ranks) {  // the same layers ran on every rank (same model, same bits): the same sums are defined
    std::vector<at::Tensor> defined;
    for (auto& g : sums)
      if (g.defined()) defined.push_back(g);
    for (auto& g : defined) g.mul_(static_cast<double>(collective->world_size()));  // sum, not mean, of the ranks'
    average_tensors(*collective, defined);
    at::Tensor counts = at::tensor({clean_sum, static_cast<double>(samples)}, at::kDouble);
    collective->all_reduce_sum(counts);
    clean_sum = counts[0].item<double>(), samples = static_cast<std::int64_t>(counts[1].item<double>());
  }
  TORCH_CHECK(samples > 0, "measure_sharpness: no batches");
  m.clean = clean_sum / static_cast<double>(samples);
  if (rho == 0) {
    m.perturbed = m.clean;
    return m;
  }
  at::NoGradGuard no_grad;
  double squared = 0;
  for (const auto& g : sums)
    if (g.defined()) squared += g.pow(2).sum().item<double>();
  const double scale = rho / (std::sqrt(squared) + 1e-12);
  for (size_t i = 0; i < layers.size(); ++i)
    if (sums[i].defined()) layers[i].second->set_perturbation(sums[i] * scale);
  double perturbed_sum = 0;
  restart();
  n = 0;
  try {
    while ((limit == 0 || n < limit) && batches(b)) {
      at::Tensor x = b.x.to(device), y = b.y.to(device);
      perturbed_sum += loss(model.forward(x), y).sum().item<double>();
      ++n;
    }
  } catch (...) {
    for (auto& [name, l] : layers) l->clear_perturbation();
    throw;
  }
  for (auto& [name, l] : layers) l->clear_perturbation();
  if (ranks) {
    at::Tensor total = at::tensor({perturbed_sum}, at::kDouble);
    collective->all_reduce_sum(total);
    perturbed_sum = total[0].item<double>();
  }
  m.perturbed = perturbed_sum / static_cast<double>(samples);
  return m;
}

}  // namespace saq
