// analysis.json, index.html and the plots of an Analysis (analyze.hpp).
#include <cmath>
#include <fstream>

#include <fmt/format.h>

#include "analyze.hpp"
#include "json.hpp"
#include "run_dir.hpp"
#include "svg_plot.hpp"

namespace saq::host {

namespace fs = std::filesystem;

namespace {

/// Every number in analysis.json round-trips (17 significant digits): equal measurements read back equal.
std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.17g}", v) : "null"; }

std::string numbers(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + num(v[i]);
  return out + "]";
}

std::string run_json(const RunAnalysis& r) {
  JsonObject o;
  o.add("name", r.name).add("model", r.model).add("quantizer", r.quantizer).add("checkpoint", r.checkpoint);
  o.add("train_samples", r.train_samples).add("test_samples", r.test_samples);
  o.raw("train_loss", num(r.train_loss)).raw("test_loss", num(r.test_loss));
  std::string sharp;
  for (const auto& s : r.sharpness)
    for (const auto& p : s.points) {
      JsonObject x;
      x.add("target", s.target).add("m", s.m).raw("rho", num(p.rho)).raw("loss", num(s.loss));
      x.raw("one_step", num(p.one_step)).raw("ascent", num(p.ascent)).add("ascent_steps", s.ascent_steps);
      sharp += (sharp.empty() ? "" : ", ") + x.str();
    }
  o.raw("sharpness", "[" + sharp + "]");
  if (r.curvature) {
    JsonObject e, t;
    e.raw("value", num(r.eigenvalue.value)).add("iterations", r.eigenvalue.iterations);
    e.add("converged", r.eigenvalue.converged).raw("relative_change", num(r.eigenvalue.relative_change));
    t.raw("value", num(r.trace.value)).raw("std_error", num(r.trace.std_error)).add("samples", r.trace.samples);
    o.raw("hessian_top_eigenvalue", e.str()).raw("hessian_trace", t.str());
  }
  std::string slices;
  for (const auto& s : r.slices) {
    JsonObject x;
    x.add("direction", s.direction).raw("alpha", numbers(s.alphas)).raw("train_loss", numbers(s.loss));
    x.raw("test_loss", numbers(s.test_loss)).raw("level_changes", numbers(s.level_changes));
    std::string jumps;
    for (const auto& j : s.jumps) {
      JsonObject y;
      y.raw("from", num(j.from)).raw("to", num(j.to)).raw("loss_change", num(j.loss_change));
      y.raw("level_change", num(j.level_change));
      jumps += (jumps.empty() ? "" : ", ") + y.str();
    }
    x.raw("jumps", "[" + jumps + "]");
    slices += (slices.empty() ? "" : ", ") + x.str();
  }
  o.raw("slices", "[" + slices + "]");
  if (r.has_fp32) {
    std::string fp;
    for (const auto& p : r.fp32_sharpness.points) {
      JsonObject x;
      x.raw("rho", num(p.rho)).raw("one_step", num(p.one_step)).raw("ascent", num(p.ascent));
      fp += (fp.empty() ? "" : ", ") + x.str();
    }
    JsonObject f;
    f.raw("loss", num(r.fp32_sharpness.loss)).raw("sharpness", "[" + fp + "]");
    f.raw("alpha", numbers(r.fp32_slice.alphas)).raw("train_loss", numbers(r.fp32_slice.loss));
    f.raw("test_loss", numbers(r.fp32_slice.test_loss));
    o.raw("fp32_latent", f.str());
  }
  if (r.has_surface) {
    JsonObject x;
    x.raw("alpha", numbers(r.surface.alphas)).raw("beta", numbers(r.surface.betas)).raw("train_loss", numbers(r.surface.loss));
    o.raw("surface", x.str());
  }
  return o.str();
}

struct Figure {
  std::string file, caption, svg;
};

std::vector<Figure> figures(const Analysis& a) {
  std::vector<Figure> out;
  for (const std::string dir : {"random", "sam"}) {
    std::vector<Series> loss, levels;
    for (const auto& r : a.runs)
      for (const auto& s : r.slices) {
        if (s.direction != dir) continue;
        Series train{r.name + " train", s.alphas, s.loss, {}};
        for (const auto& j : s.jumps) train.marked.push_back(j.index + 1);
        loss.push_back(train);
        loss.push_back({r.name + " test", s.alphas, s.test_loss, {}});
        if (dir == "random" && r.has_fp32) loss.push_back({r.name + " FP32 train", r.fp32_slice.alphas, r.fp32_slice.loss, {}});
        std::vector<double> pct;
        for (double f : s.level_changes) pct.push_back(100 * f);
        levels.push_back({r.name, s.alphas, pct, {}});
      }
    const std::string what = dir == "random" ? "a filter-normalised random direction" : "the SAM direction (filter-normalised)";
    out.push_back({"slice_" + dir + ".svg", "Loss along " + what + ", latent weights re-quantized; rings: where "
                   "the train loss jumps (a step over 3× the slice's median step)",
                   line_chart("loss along " + dir, "α", "cross-entropy", loss)});
    out.push_back({"levels_" + dir + ".svg", "Quantized weights whose level differs from α = 0, along " + what,
                   line_chart("level changes along " + dir, "α", "% of weights", levels)});
  }
  std::vector<Series> sharp;
  for (const auto& r : a.runs)
    for (const auto& s : r.sharpness) {
      Series x{r.name + (s.target == "quantized" ? " Q" : " L") + " m=" + s.m, {}, {}, {}};
      for (const auto& p : s.points) x.x.push_back(p.rho), x.y.push_back(p.ascent);
      sharp.push_back(x);
    }
  out.push_back({"sharpness.svg", "Sharpness max L(w+ε) − L(w) (gradient ascent) against ρ; Q: ε on the quantized "
                 "weights, L: on the latent weights",
                 line_chart("sharpness", "ρ", "loss rise", sharp)});
  for (const auto& r : a.runs)
    if (r.has_surface)
      out.push_back({"surface_" + r.name + ".svg", r.name + ": loss over two filter-normalised directions",
                     contour_chart(r.name + ": training loss surface", r.surface.alphas, r.surface.betas, r.surface.loss)});
  return out;
}

std::string html(const Analysis& a, const std::vector<Figure>& figs) {
  std::string rows, sharp, curv;
  for (const auto& r : a.runs) {
    rows += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4f}</td><td>{:.4f}</td></tr>\n",
                        xml_escape(r.name), xml_escape(r.model), xml_escape(r.quantizer), xml_escape(r.checkpoint),
                        r.train_samples, r.train_loss, r.test_loss);
    std::vector<Sharpness> all = r.sharpness;
    if (r.has_fp32) all.push_back(r.fp32_sharpness);
    for (const auto& s : all)
      for (const auto& p : s.points)
        sharp += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{:g}</td><td>{:.5f}</td><td>{:.5f}</td></tr>\n",
                             xml_escape(r.name), s.target, s.m, p.rho, p.one_step, p.ascent);
    if (r.curvature)
      curv += fmt::format("<tr><td>{}</td><td>{:.5g}</td><td>{}{}</td><td>{:.5g} ± {:.2g}</td><td>{}</td></tr>\n",
                          xml_escape(r.name), r.eigenvalue.value, r.eigenvalue.iterations,
                          r.eigenvalue.converged ? " (converged)" : " (not converged)", r.trace.value, r.trace.std_error,
                          r.trace.samples);
  }
  std::string plots;
  for (const auto& f : figs)
    plots += fmt::format("<figure>{}<figcaption>{} (<a href=\"{}\">{}</a>)</figcaption></figure>\n", f.svg,
                         xml_escape(f.caption), f.file, f.file);
  const auto& o = a.options;
  std::string rhos;
  for (double r : o.rhos) rhos += (rhos.empty() ? "" : ", ") + fmt::format("{:g}", r);
  return fmt::format(R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>saqhost analyze</title>
<style>body{{font-family:sans-serif;margin:24px;max-width:1150px}} table{{border-collapse:collapse;margin:8px 0 20px}}
td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}} td:first-child,th:first-child{{text-align:left}}
figure{{display:inline-block;margin:8px}} figcaption{{font-size:12px;max-width:520px}}</style></head><body>
<h1>Flatness of {} run{}</h1>
<p>Budget <b>{}</b>, seed {}, checkpoint {}; ρ = {}; gradient ascent {} steps; every loss is the mean cross-entropy
in eval mode (BatchNorm statistics and quantizer clips fixed). "quantized": ε added to the quantized weights (SAQ's
perturbation); "latent": δ added to the latent weights, re-quantized; "fp32 latent": the latent weights as a
full-precision model (every layer at 32 bits). m = batch: ε per batch of the subset, averaged;
m = subset: one ε for the whole subset.</p>
<h2>Runs</h2><table><tr><th>run</th><th>model</th><th>quantizer</th><th>checkpoint</th><th>samples</th><th>train loss</th><th>test loss</th></tr>
{}</table>
<h2>Sharpness</h2><table><tr><th>run</th><th>weights</th><th>m</th><th>ρ</th><th>one step</th><th>ascent</th></tr>
{}</table>
{}<h2>Plots</h2>
{}</body></html>
)", a.runs.size(), a.runs.size() == 1 ? "" : "s", o.budget, o.seed, xml_escape(o.checkpoint), rhos, a.ascent_steps, rows, sharp,
                     curv.empty() ? std::string()
                                  : "<h2>Curvature (quantized weights)</h2><table><tr><th>run</th><th>Hessian λ_max</th>"
                                    "<th>iterations</th><th>trace (Hutchinson)</th><th>samples</th></tr>\n" + curv + "</table>\n",
                     plots);
}

}  // namespace

fs::path write_analysis(const Analysis& a) {
  const fs::path dir = a.options.output;
  fs::create_directories(dir);
  const std::vector<Figure> figs = figures(a);
  for (const auto& f : figs) write_text_atomically(dir / f.file, f.svg);
  std::string runs;
  for (const auto& r : a.runs) runs += (runs.empty() ? "\n    " : ",\n    ") + run_json(r);
  JsonObject top;
  top.add("budget", a.options.budget).add("seed", static_cast<std::int64_t>(a.options.seed));
  top.add("checkpoint", a.options.checkpoint).raw("rho", numbers(a.options.rhos)).add("ascent_steps", a.ascent_steps);
  top.add("eigen_iterations", a.eigen_iterations).add("trace_samples", a.trace_samples);
  top.raw("runs", "[" + runs + "\n  ]");
  write_text_atomically(dir / "analysis.json", top.str() + "\n");
  write_text_atomically(dir / "index.html", html(a, figs));
  return dir / "index.html";
}

}  // namespace saq::host
