// saqhost export: the ONNX graph passes onnx's checker and strict shape inference; weights are integer codes in
// their layer's range with the scales the checkpoint's clips give (α/N), 2-bit weights dequantize to ±α/3, ±α;
// every model plugin's graph runs in ONNX Runtime 1.30.0 as saqhost evaluates the same checkpoint (at W4A4, at
// mixed per-layer bits, at W2A2, with every quantizer); bad input is refused with exit 2 and nothing written.
#include "unit.hpp"

#include <cmath>
#include <filesystem>
#include <regex>

#include <saq/torch_file.hpp>

#include "export_cli.hpp"
#include "search_cli.hpp"

namespace {

namespace fs = std::filesystem;
using saq::test::TempDir;
using saq::export_test::inspect;
using saq::export_test::pipeline;

const std::string kLiqW2A4 = "use = \"liq_wn\"\nweight_bits = 2\nactivation_bits = 4";

/// |clip_value| of `quantizer` ("conv2.weight_quantizer") in a weights checkpoint, as float32.
float clip_of(const fs::path& checkpoint, const std::string& quantizer) {
  for (const auto& [name, t] : saq::read_state_dict(checkpoint.string()))
    if (name == quantizer + ".clip_value") return std::abs(t.item<float>());
  FAIL("no " << quantizer << ".clip_value in " << checkpoint);
  return 0;
}

at::Tensor tensor_of(const fs::path& checkpoint, const std::string& name) {
  for (const auto& [n, t] : saq::read_state_dict(checkpoint.string()))
    if (n == name) return t;
  FAIL("no " << name << " in " << checkpoint);
  return {};
}

using saq::test::contains;

void run_ok(const TempDir& dir, const std::string& text, const std::string& extra = "") {
  saq::test::CliResult r = saq::test::saqhost_on(dir, text, "run", "-q " + extra);
  REQUIRE_MESSAGE(r.status == 0, r.output);
}

}  // namespace

TEST_CASE("export: integer codes of α/N in their bit range, uint8 inputs, the checker's approval") {
  TempDir dir;
  run_ok(dir, pipeline((dir / "runs").string(), "use = \"small_cnn\"\nwidth = 8", kLiqW2A4, 1, 12));
  const fs::path run = dir / "runs" / "e", final_pt = run / "checkpoints" / "final.pt";
  saq::test::CliResult r = saq::test::saqhost("export " + run.string() + " --no-fold-bn -o " + (dir / "raw.onnx").string());
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const auto g = inspect((dir / "raw.onnx").string());
  REQUIRE_MESSAGE(g.checked, g.output);

  // conv2 at 2 bits: codes ±1, ±3 in int8, scale fl(α/3); dequantized 3·scale is α to the float
  const float alpha = clip_of(final_pt, "conv2.weight_quantizer");
  const auto& codes = g.inits.at("conv2.weight_codes");
  CHECK(codes.dtype == "int8");
  for (double v : codes.values) CHECK_MESSAGE((v == -3 || v == -1 || v == 1 || v == 3), "code " << v);
  const auto& scale = g.inits.at("conv2.weight_scale");
  REQUIRE(scale.numel == 1);
  CHECK(scale.min == static_cast<double>(alpha / 3.0f));
  CHECK(std::abs(static_cast<float>(scale.min) * 3.0f - alpha) <= std::nextafter(alpha, 2 * alpha) - alpha);
  // conv1 at 8 bits (the first layer's policy): odd codes −255..255 need 9 bits, so int32
  const auto& first = g.inits.at("conv1.weight_codes");
  CHECK(first.dtype == "int32");
  CHECK(first.min >= -255);
  CHECK(first.max <= 255);
  for (double v : first.values) CHECK(std::fmod(std::abs(v), 2.0) == 1.0);
  // inputs at 4 bits: uint8, zero point 0, scale fl(α_a/15), clipped at α_a first; the image itself stays float
  const float alpha_a = clip_of(final_pt, "conv2.activation_quantizer");
  CHECK(g.inits.at("conv2.input_zero_point").dtype == "uint8");
  CHECK(g.inits.at("conv2.input_zero_point").max == 0);
  CHECK(g.inits.at("conv2.input_scale").min == static_cast<double>(alpha_a / 15.0f));
  CHECK(g.count("QuantizeLinear") == 4);  // conv2, conv3, conv4, fc; not conv1
  CHECK(g.nodes.at(1).op == "Conv");      // after conv1's weight DequantizeLinear: the float image into conv1
  CHECK(g.count("BatchNormalization") == 4);
  CHECK(g.count("Clip") == 4);

  // folded (the default) where exact: conv1's input is the float image, so its BN's γ/√(σ²+ε) joins conv1's scale
  // per output channel (the codes only change sign); conv2..4 take quantized inputs and keep theirs
  r = saq::test::saqhost("export " + run.string() + " -o " + (dir / "folded.onnx").string());
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const auto f = inspect((dir / "folded.onnx").string());
  REQUIRE_MESSAGE(f.checked, f.output);
  CHECK(f.count("BatchNormalization") == 3);
  CHECK(f.inits.at("conv1.weight_scale").numel == 8);
  const float alpha1 = clip_of(final_pt, "conv1.weight_quantizer");
  const at::Tensor gamma = tensor_of(final_pt, "bn1.weight"), var = tensor_of(final_pt, "bn1.running_var");
  const at::Tensor folded = (alpha1 / 255.0f) * (gamma.to(at::kDouble).abs() / at::sqrt(var.to(at::kDouble) + 1e-5));
  CHECK(f.inits.at("conv1.weight_scale").min == doctest::Approx(folded.min().item<double>()).epsilon(1e-6));
  CHECK(f.inits.at("conv1.weight_scale").max == doctest::Approx(folded.max().item<double>()).epsilon(1e-6));
  CHECK(f.inits.at("conv1.weight_codes").min >= -255);
  CHECK(f.inits.at("conv2.weight_scale").numel == 1);
  for (const auto& n : f.nodes)
    if (n.name == "conv1/weight_dequantize") CHECK(n.axis == "0");

  // the sidecar: bits, types, and conv2's BOPs row by the paper's rule (MACs · b_w · b_a)
  const std::string side = saq::test::read_file(dir / "folded.quant.json");
  std::smatch m;
  REQUIRE(std::regex_search(side, m, std::regex("\"name\": \"conv2\", \"op\": \"Conv\", \"weight_bits\": 2, "
                                                "\"activation_bits\": 4, \"kind\": \"conv\", \"macs\": ([0-9]+), "
                                                "\"bops\": ([0-9]+)")));
  CHECK(std::stod(m[2]) == std::stod(m[1]) * 2 * 4);
  CHECK(contains(side, "\"type\": \"int8\", \"initializer\": \"conv2.weight_codes\""));
  CHECK(contains(side, "\"batch_norm_folded\": true"));   // conv1's
  CHECK(contains(side, "\"batch_norm_folded\": false"));  // conv2's
  // the default place, beside the run
  r = saq::test::saqhost("export " + run.string() + " -q");
  CHECK(r.status == 0);
  CHECK(fs::exists(run / "export" / "model.onnx"));
  CHECK(fs::exists(run / "export" / "model.quant.json"));
}

TEST_CASE("export: every model plugin, at W4A4 and at mixed bits, runs in ONNX Runtime as saqhost evaluates it") {
  // ImageNet nets on small images: every layer still runs (to 1×1 or 2×2 before the pooling). 32 samples, all of
  // them in the code batch: every layer's codes of a large net are ~100 MB a 64-sample batch (written, then read)
  const std::vector<std::pair<std::string, int>> models = {
      {"small_cnn", 32}, {"small_resnet", 32}, {"preresnet20", 32}, {"resnet18", 32},
      {"resnet34", 32}, {"resnet50", 32}, {"mobilenetv2", 64}, {"mobilenetv2_cifar", 32}};
  for (const auto& entry : models) {
    const std::string model = entry.first;  // (clang: no structured bindings inside doctest's capture lambdas)
    const int size = entry.second;
    CAPTURE(model);
    TempDir dir;
    run_ok(dir, pipeline((dir / "runs").string(), "use = \"" + model + "\"", "use = \"liq_wn\"", 3, size));
    const std::string run = (dir / "runs" / "e").string();
    saq::test::CliResult c = saq::export_test::check_onnx(run, 32);
    CHECK_MESSAGE(c.status == 0, c.output);
    CHECK(c.has("PASS"));
    // mixed: the trained model at other bits per layer (an eval stage from its final.pt: the clips come along)
    TempDir mixed;
    std::string text = pipeline((mixed / "runs").string(), "use = \"" + model + "\"",
                                "use = \"liq_wn\"\n[[quantizer.rule]]\nmatch = \"*0*\"\nweight_bits = 2\n"
                                "activation_bits = 3\n[[quantizer.rule]]\nmatch = \"*1*\"\nweight_bits = 5\n"
                                "activation_bits = 6", 3, size);
    text = text.substr(0, text.find("[[stage]]")) + "[[stage]]\nuse = \"eval\"\nlimit_batches = 1\ninit = \"" + run +
           "/checkpoints/final.pt\"\n";
    run_ok(mixed, text);
    const std::string report = saq::test::read_file(mixed / "runs" / "e" / "report.md");
    if (model != "small_cnn") CHECK(contains(report, "| 2 | 3 |"));  // small_cnn's names (conv1..4, fc) hold no 0
    CHECK(contains(report, "| 5 | 6 |"));
    c = saq::export_test::check_onnx((mixed / "runs" / "e").string(), 32);
    CHECK_MESSAGE(c.status == 0, c.output);
  }
}

TEST_CASE("export: W2A2 small models and every quantizer (DoReFa, PACT, LSQ per tensor and per channel)") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"use = \"small_cnn\"", "use = \"liq_wn\"\nweight_bits = 2\nactivation_bits = 2"},
      {"use = \"small_resnet\"", "use = \"liq_wn\"\nweight_bits = 2\nactivation_bits = 2"},
      {"use = \"preresnet20\"", "use = \"liq_wn\"\nweight_bits = 2\nactivation_bits = 2"},
      {"use = \"small_cnn\"", "use = \"liq\"\nweight_bits = 3\nactivation_bits = 3"},
      {"use = \"small_cnn\"", "use = \"dorefa\""},
      {"use = \"small_cnn\"", "use = \"pact\"\nclip_init = 2.0"},
      {"use = \"small_resnet\"", "use = \"lsq\""},
      {"use = \"small_resnet\"", "use = \"lsq\"\nper_channel = true\nweight_bits = 3\nactivation_bits = 5"}};
  for (const auto& entry : cases) {
    const std::string model = entry.first, quantizer = entry.second;
    CAPTURE(model);
    CAPTURE(quantizer);
    TempDir dir;
    run_ok(dir, pipeline((dir / "runs").string(), model, quantizer, 1, 16));
    saq::test::CliResult c = saq::export_test::check_onnx((dir / "runs" / "e").string(), 96);
    CHECK_MESSAGE(c.status == 0, c.output);
  }
}

TEST_CASE("export: bad input is exit 2 naming what is wrong, and writes nothing") {
  TempDir dir;
  const std::string small = "use = \"small_cnn\"\nwidth = 4";
  run_ok(dir, pipeline((dir / "runs").string(), small, "use = \"liq_wn\""));
  const fs::path run = dir / "runs" / "e";
  const std::string out = (dir / "out" / "m.onnx").string();
  auto nothing_written = [&] { return !fs::exists(dir / "out"); };

  saq::test::CliResult r = saq::test::saqhost("export " + (dir / "nope").string() + " -o " + out);
  CHECK(r.status == 2);
  CHECK(r.has("no such run directory"));
  // a run that saved no checkpoint yet
  fs::create_directories(dir / "young");
  fs::copy_file(run / "config.resolved.toml", dir / "young" / "config.resolved.toml");
  r = saq::test::saqhost("export " + (dir / "young").string() + " -o " + out);
  CHECK(r.status == 2);
  CHECK(r.has("young/checkpoints/final.pt: no such checkpoint (the run saved none yet)"));
  r = saq::test::saqhost("export " + run.string() + " --checkpoint stage7 -o " + out);
  CHECK(r.status == 2);
  CHECK(r.has("--checkpoint stage7: the pipeline has stages 0..0"));
  r = saq::test::saqhost("export " + run.string() + " --checkpoint best -o " + out);
  CHECK(r.status == 2);
  CHECK(r.has("'best' is neither final nor stageN"));
  r = saq::test::saqhost("export " + run.string() + " --profile tflite -o " + out);
  CHECK(r.status == 2);
  CHECK(r.has("'tflite' is not a profile (onnxruntime, tensorrt)"));
  // a checkpoint from another pipeline (a wider model)
  TempDir other;
  run_ok(other, pipeline((other / "runs").string(), "use = \"small_cnn\"\nwidth = 8", "use = \"liq_wn\""));
  fs::copy_file(other / "runs" / "e" / "checkpoints" / "final.pt", run / "checkpoints" / "stage0.pt",
                fs::copy_options::overwrite_existing);
  r = saq::test::saqhost("export " + run.string() + " --checkpoint stage0 -o " + out);
  CHECK(r.status == 2);
  CHECK(r.has("stage0.pt does not fit the model of"));
  CHECK(r.has("conv1.weight"));
  // TensorRT: the first layer's 8-bit LIQ weights need 9-bit codes; 8-bit unsigned inputs need 0..255
  r = saq::test::saqhost("export " + run.string() + " --profile tensorrt -o " + out);
  CHECK(r.status == 2);
  CHECK(r.has("the tensorrt profile cannot hold 3 layer tensors exactly"));
  CHECK(r.has("conv1: weight codes -255..255 with zero point 0 (8-bit): TensorRT's int8 weights are symmetric"));
  CHECK(r.has("fc: weight codes -255..255"));
  CHECK(r.has("fc: input codes 0..255 with zero point 0 (8-bit)"));
  CHECK(r.has("--allow-float"));
  CHECK(nothing_written());
  TempDir a8;
  run_ok(a8, pipeline((a8 / "runs").string(), small, "use = \"liq_wn\"\nactivation_bits = 8\nfirst_weight_bits = 4\n"
                                                      "last_weight_bits = 4"));
  r = saq::test::saqhost("export " + (a8 / "runs" / "e").string() + " --profile tensorrt -o " + out);
  CHECK(r.status == 2);
  CHECK(r.has("conv2: input codes 0..255 with zero point 0 (8-bit): TensorRT takes int8 with zero point 0, -128..127"));
  CHECK(nothing_written());
  // ... and with --allow-float they go out as float, said so, and still compute what saqhost computes
  r = saq::test::saqhost("export " + (a8 / "runs" / "e").string() + " --profile tensorrt --allow-float -o " + out);
  CHECK(r.status == 0);
  CHECK(r.has("exported as float (--allow-float)"));
  const auto g = inspect(out);
  CHECK(g.checked);
  CHECK(g.count("Round") == 4);
  CHECK(g.count("QuantizeLinear") == 0);
  CHECK(g.inits.at("conv2.weight_codes").dtype == "int8");
  saq::test::CliResult c = saq::export_test::check_onnx((a8 / "runs" / "e").string(), 64, "--profile tensorrt --allow-float");
  CHECK_MESSAGE(c.status == 0, c.output);
}

TEST_CASE("export: a full-precision run is a float graph; a quantizer without an integer grid is refused") {
  TempDir dir;
  std::string fp32 = pipeline((dir / "runs").string(), "use = \"small_cnn\"\nwidth = 4", "use = \"liq_wn\"");
  fp32 = fp32.substr(0, fp32.find("[quantizer]")) + fp32.substr(fp32.find("[optimizer]"));
  run_ok(dir, fp32);
  saq::test::CliResult r = saq::test::saqhost("export " + (dir / "runs" / "e").string() + " -o " + (dir / "f.onnx").string());
  CHECK(r.status == 0);
  CHECK(r.has("has no quantized layer: a float graph"));
  const auto g = inspect((dir / "f.onnx").string());
  CHECK(g.checked);
  CHECK(g.count("DequantizeLinear") == 0);
  CHECK(g.count("Conv") == 4);
  CHECK(saq::export_test::check_onnx((dir / "runs" / "e").string(), 64).status == 0);

  for (const auto& entry : std::vector<std::pair<std::string, std::string>>{
           {"use = \"gridless\"", "layer conv1 (quantizer 'gridless'): its weight quantizer declares no integer grid"},
           {"use = \"off_grid\"", "layer conv1 (quantizer 'off_grid'): the weights its quantizer returns are not on "
                                  "the grid it declares"},
           {"use = \"odd_levels\"\nlast_activation_bits = 4",  // (8-bit signed input codes would not fit at all)
            "layer conv2: its activation quantizer's outputs differ from the grid it declares"}}) {
    const std::string quantizer = entry.first, message = entry.second;
    TempDir q;
    const std::string plugin = "-P " + saq::test::env("SAQ_FIXTURE_DIR") + "/libfixture_export_quantizers.so";
    run_ok(q, pipeline((q / "runs").string(), "use = \"small_cnn\"\nwidth = 4", quantizer), plugin);
    r = saq::test::saqhost("export " + (q / "runs" / "e").string() + " -o " + (q / "x.onnx").string() + " " + plugin);
    CHECK(r.status == 2);
    CHECK_MESSAGE(r.has(message), r.output);
    CHECK(!fs::exists(q / "x.onnx"));
  }
  // the onnxruntime profile's inexact case: 8-bit signed input codes −255..255 need 9 bits (no QDQ activation type)
  TempDir odd;
  const std::string plugin = "-P " + saq::test::env("SAQ_FIXTURE_DIR") + "/libfixture_export_quantizers.so";
  run_ok(odd, pipeline((odd / "runs").string(), "use = \"small_cnn\"\nwidth = 4",
                       "use = \"wide_signed\"\nactivation_bits = 8"), plugin);
  const std::string run = (odd / "runs" / "e").string();
  r = saq::test::saqhost("export " + run + " -o " + (odd / "x.onnx").string() + " " + plugin);
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.has("the onnxruntime profile cannot hold 4 layer tensors exactly"), r.output);
  CHECK(r.has("conv2: input codes -255..255 with zero point 0 fit neither uint8 nor int8"));
  CHECK(!fs::exists(odd / "x.onnx"));
  saq::test::CliResult c = saq::export_test::check_onnx(run, 64, "--allow-float " + plugin);
  CHECK_MESSAGE(c.status == 0, c.output);
}

TEST_CASE("export: a pipeline's export stage writes what saqhost export writes of the same weights") {
  TempDir dir;
  std::string text = pipeline((dir / "runs").string(), "use = \"small_cnn\"\nwidth = 4", kLiqW2A4, 1, 12);
  text += "[[stage]]\nuse = \"export\"\noutput = \"deploy/net.onnx\"\n";
  run_ok(dir, text);
  const fs::path run = dir / "runs" / "e";
  REQUIRE(fs::exists(run / "deploy" / "net.onnx"));
  saq::test::CliResult r = saq::test::saqhost("export " + run.string() + " -q");
  REQUIRE(r.status == 0);
  auto layers = [](const std::string& sidecar) { return sidecar.substr(sidecar.find("\"bops\"")); };
  CHECK(layers(saq::test::read_file(run / "deploy" / "net.quant.json")) ==
        layers(saq::test::read_file(run / "export" / "model.quant.json")));
  const auto a = inspect((run / "deploy" / "net.onnx").string()), b = inspect((run / "export" / "model.onnx").string());
  CHECK(a.checked);
  REQUIRE(a.inits.size() == b.inits.size());
  for (const auto& entry : a.inits) {
    const std::string name = entry.first;
    const auto& init = entry.second;
    CAPTURE(name);
    CHECK(init.min == b.inits.at(name).min);
    CHECK(init.max == b.inits.at(name).max);
    CHECK(init.values == b.inits.at(name).values);
  }
}

TEST_CASE("export: the bits a search chose (its result.toml's rules) are the graph's") {
  TempDir dir;
  const std::string search = "epochs = 1\nsearch = { use = \"random\", candidates = 3, score_batches = 1 }\n";
  run_ok(dir, saq::search_test::pipeline((dir / "runs").string(), search, 0.7, 0.3));
  const fs::path run = dir / "runs" / "s";
  const auto bits = saq::search_test::result_bits(saq::test::read_file(run / "search" / "result.toml"));
  REQUIRE(bits.size() == 3);
  saq::test::CliResult c = saq::export_test::check_onnx(run.string(), 16);
  CHECK_MESSAGE(c.status == 0, c.output);
  REQUIRE(saq::test::saqhost("export " + run.string() + " -q").status == 0);
  const std::string side = saq::test::read_file(run / "export" / "model.quant.json");
  const auto g = inspect((run / "export" / "model.onnx").string());
  for (size_t i = 0; i < 3; ++i) {
    const std::string layer = "conv" + std::to_string(i + 2);
    CAPTURE(layer);
    CHECK(contains(side, "\"name\": \"" + layer + "\", \"op\": \"Conv\", \"weight_bits\": " + std::to_string(bits[i].first) +
                        ", \"activation_bits\": " + std::to_string(bits[i].second)));
    const long n = (1L << bits[i].first) - 1;  // odd codes within ±(2^b − 1)
    CHECK(g.inits.at(layer + ".weight_codes").max <= n);
    CHECK(g.inits.at(layer + ".weight_codes").min >= -n);
  }
}
