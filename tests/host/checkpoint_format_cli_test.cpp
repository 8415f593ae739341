// The files saqhost keeps for itself — stage and final checkpoints, their .pth state_dicts, the resume
// checkpoint, a samq search state — are torch.save files: Python's torch.load(path, weights_only=True) opens
// each, and its tensors equal, to the bit, what saqhost's own reader reads. TorchScript archives (saqhost's old
// format; LibTorch's reader of them is what the recorded findings crash) are refused unread, naming the file,
// in bounded memory; `saqhost convert` turns an old weights checkpoint into a new one.
#include "unit.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/serialize/output-archive.h>

#include <saq/torch_file.hpp>

#include "saqhost_cli.hpp"
#include "search_cli.hpp"

#if defined(__SANITIZE_ADDRESS__)  // gcc
#define SAQ_TEST_ASAN 1
#elif defined(__has_feature)  // clang
#if __has_feature(address_sanitizer)
#define SAQ_TEST_ASAN 1
#endif
#endif

namespace {

#ifdef SAQ_TEST_ASAN
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif

namespace fs = std::filesystem;
using saq::StateDict;
using saq::test::TempDir;
using Result = saq::test::CliResult;

std::string bytes_of(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<std::size_t>(c.numel() * c.element_size()));
}

/// `state` flattened to dotted names as torch_load.py flattens it (plain values as 0-d tensors); strs apart.
void flatten(const StateDict& s, const std::string& prefix, std::map<std::string, at::Tensor>& out,
             std::map<std::string, std::string>& texts) {
  for (const auto& [k, v] : s.entries()) {
    const std::string name = prefix + k;
    if (const auto* t = std::get_if<at::Tensor>(&v)) out[name] = *t;
    else if (const auto* i = std::get_if<std::int64_t>(&v)) out[name] = at::scalar_tensor(*i, at::kLong);
    else if (const auto* b = std::get_if<bool>(&v)) out[name] = at::scalar_tensor(*b, at::kBool);
    else if (const auto* d = std::get_if<double>(&v)) out[name] = at::scalar_tensor(*d, at::kDouble);
    else if (const auto* str = std::get_if<std::string>(&v)) texts[name] = *str;
    else flatten(*std::get<std::shared_ptr<StateDict>>(v), name + ".", out, texts);
  }
}

/// Opens each file with Python's torch.load(weights_only=True) (one Python for all) and checks every tensor and
/// string against saq's reader; returns how many tensors Python saw in each.
std::vector<std::size_t> check_with_torch_load(const std::vector<fs::path>& files, const TempDir& dir) {
  const auto flat = [&](const fs::path& file) { return dir / (file.filename().string() + ".flat.pth"); };
  std::string args;
  for (const auto& file : files) args += " " + file.string() + " " + flat(file).string();
  std::string output;
  const int status = saq::test::run_command(
      "/usr/bin/python3 " + saq::test::env("SAQ_SOURCE_ROOT") + "/tests/host/torch_load.py" + args, output);
  INFO(output);
  REQUIRE(status == 0);
  std::vector<std::size_t> seen;
  for (size_t i = 0; i < files.size(); ++i) {
    const fs::path& file = files[i];
    CAPTURE(file);
    const std::string said = saq::test::between(output, "== " + file.string() + "\n",
                                                i + 1 < files.size() ? "== " + files[i + 1].string() + "\n" : "");
    REQUIRE_FALSE(said.empty());
    std::map<std::string, at::Tensor> ours;
    std::map<std::string, std::string> texts;
    flatten(saq::read_state(file.string()), "", ours, texts);
    const saq::NamedTensors theirs = saq::read_state_dict(flat(file).string());
    CHECK(theirs.size() == ours.size());
    for (const auto& entry : theirs) {  // no structured binding: CAPTURE is a lambda (clang)
      const std::string& name = entry.first;
      const at::Tensor& t = entry.second;
      CAPTURE(name);
      REQUIRE(ours.count(name) == 1);
      CHECK((t.scalar_type() == ours[name].scalar_type()));
      CHECK(t.sizes() == ours[name].sizes());
      CHECK(bytes_of(t) == bytes_of(ours[name]));
    }
    for (const auto& [name, text] : texts) CHECK(said.find(name + "=" + text + "\n") != std::string::npos);
    seen.push_back(theirs.size());
  }
  return seen;
}

std::string search_pipeline(const TempDir& dir) {
  return saq::search_test::pipeline((dir / "runs").string(),
                                    "epochs = 2\nlimit_batches = 2\nsearch = { use = \"samq\", bit_warmup_epochs = 1, "
                                    "derive_samples = 2, score_batches = 2 }\n",
                                    0.9, 0.3);
}

/// The weights of a run killed mid-stage, with momentum: a resume.pt that holds optimizer state.
fs::path killed_run(const TempDir& dir) {
  saq::test::write_file(dir / "k.toml", search_pipeline(dir));
  Result r = saq::test::saqhost_cmd("SAQ_FAULT_AFTER_STEP=1", "run " + (dir / "k.toml").string() +
                                                                   " --set run.name=k --set run.checkpoint_every=1 "
                                                                   "--set stage.0.optimizer.momentum=0.9");
  INFO(r.output);
  REQUIRE(r.status == 128 + 9);
  return dir / "runs/k";
}

/// A TorchScript archive as LibTorch's Module::save writes one (saqhost's checkpoints before this format):
/// `tensors` by dotted name, nested one module per name part.
void write_old_archive(const saq::NamedTensors& tensors, const fs::path& path) {
  auto root = std::make_shared<torch::nn::Module>();
  for (const auto& [name, t] : tensors) {
    torch::nn::Module* m = root.get();
    std::string rest = name;
    for (std::size_t dot; (dot = rest.find('.')) != std::string::npos; rest = rest.substr(dot + 1)) {
      const std::string part = rest.substr(0, dot);
      auto children = m->named_children();
      m = children.contains(part) ? children[part].get()
                                  : m->register_module(part, std::make_shared<torch::nn::Module>()).get();
    }
    m->register_buffer(rest, t.clone());
  }
  torch::serialize::OutputArchive archive;
  root->save(archive);
  archive.save_to(path.string());
}

}  // namespace

TEST_CASE("every file a run keeps opens in torch.load(weights_only=True), its tensors those saqhost reads") {
  TempDir dir;
  saq::test::write_file(dir / "p.toml", search_pipeline(dir));
  Result r = saq::test::saqhost("run " + (dir / "p.toml").string());
  INFO(r.output);
  REQUIRE(r.status == 0);
  const fs::path run = dir / "runs/s";
  const fs::path killed = killed_run(dir);
  const fs::path resume = killed / "checkpoints/resume.pt";
  std::vector<fs::path> files;
  for (const char* f : {"checkpoints/stage0.pt", "checkpoints/stage0.pth", "checkpoints/stage2.pt", "checkpoints/final.pt",
                        "checkpoints/final.pth", "search/state.pt"})
    files.push_back(run / f);
  files.push_back(resume);
  for (std::size_t n : check_with_torch_load(files, dir)) CHECK(n > 0);
  const StateDict state = saq::read_state((run / "search/state.pt").string());
  CHECK(state.text("kind") == "samq search state");
  CHECK(state.child("generator_adam").text("kind") == "adam");
  const StateDict final_pt = saq::read_state((run / "checkpoints/final.pt").string());
  CHECK(final_pt.integer("format") == 2);
  CHECK(final_pt.text("kind") == "saqhost weights");
  // the .pt's state_dict is the .pth, tensor for tensor
  const saq::NamedTensors pth = saq::read_state_dict((run / "checkpoints/final.pth").string());
  CHECK(saq::read_state_dict((run / "checkpoints/final.pt").string()).size() == pth.size());

  const StateDict point = saq::read_state(resume.string());
  CHECK(point.text("kind") == "saqhost resume");
  CHECK(point.child("point").integer("step") == 1);
  const StateDict& momentum = point.child("optimizer").child("groups").child("0").child("state");
  CHECK(momentum.size() > 0);  // SGD's momentum buffers, one per parameter the step reached
  CHECK(momentum.child("0").tensor("momentum_buffer").sizes() ==
        saq::read_state_dict((run / "checkpoints/stage0.pth").string()).front().second.sizes());
  // what saqhost reads it rewrites to the same bytes: nothing is lost or reinterpreted in between
  CHECK(saq::torch_file_bytes(point) == saq::test::read_file(resume));
}

TEST_CASE("LibTorch's recorded finding (a 4 GiB string in a TorchScript resume.pt) is refused unread, in bounded memory") {
  TempDir dir;
  const fs::path killed = killed_run(dir);
  const fs::path resume = killed / "checkpoints/resume.pt";
  fs::copy_file(fs::path(saq::test::env("SAQ_SOURCE_ROOT")) / "tests/fuzz/libtorch_findings/resume_pickled_length.pt",
                resume, fs::copy_options::overwrite_existing);
  // 3 GiB of address space: LibTorch's reader would allocate 4 GiB for the string (sanitizers reserve far more
  // address space than they use, so there the limit is left out)
  const std::string limit = kAddressSanitizer ? "" : "ulimit -v 3145728;";
  std::string output;
  const int status = saq::test::run_command(limit + " " + saq::test::env("SAQHOST") + " resume " + killed.string(), output);
  INFO(output);
  CHECK(status == 2);
  CHECK(output.find(resume.string() + ": a resume checkpoint of an earlier saqhost (a TorchScript archive)") !=
        std::string::npos);
}

TEST_CASE("a TorchScript archive with a damaged source entry is refused unread; convert turns an old weights file into a new one") {
  TempDir dir;
  saq::test::write_file(dir / "p.toml", search_pipeline(dir));
  REQUIRE(saq::test::saqhost("run " + (dir / "p.toml").string() + "").status == 0);
  const saq::NamedTensors weights = saq::read_state_dict((dir / "runs/s/checkpoints/stage0.pth").string());
  const fs::path old = dir / "old.pt";
  write_old_archive(weights, old);

  // damage the archive's TorchScript source (LibTorch's reader crashes on such files): it is never parsed
  std::string bytes = saq::test::read_file(old);
  const std::size_t code = bytes.find("code/__torch__");
  REQUIRE(code != std::string::npos);
  const std::size_t source = bytes.find("class ", code);
  REQUIRE(source != std::string::npos);
  bytes.replace(source, 8, std::string("\x01\xff((\x01\xff))", 8));  // same length: the zip stays sound
  const fs::path damaged = dir / "damaged.pt";
  saq::test::write_file(damaged, bytes);
  saq::test::write_file(dir / "init.toml", search_pipeline(dir));
  for (const fs::path& file : {old, damaged}) {
    Result r = saq::test::saqhost("run " + (dir / "init.toml").string() + " --set run.name=i --set stage.0.init=" +
                                  file.string());
    INFO(r.output);
    CHECK(r.status == 2);
    CHECK(r.has(file.string() + ": a TorchScript archive"));
    CHECK(r.has("saqhost convert " + file.string() + " NEW.pt"));
  }

  const fs::path converted = dir / "new.pt";
  Result c = saq::test::saqhost("convert " + old.string() + " " + converted.string());
  INFO(c.output);
  REQUIRE(c.status == 0);
  const saq::NamedTensors back = saq::read_state_dict(converted.string());
  REQUIRE(back.size() == weights.size());
  std::map<std::string, at::Tensor> by_name(back.begin(), back.end());
  for (const auto& entry : weights) {
    const std::string& name = entry.first;
    const at::Tensor& t = entry.second;
    CAPTURE(name);
    REQUIRE(by_name.count(name) == 1);
    CHECK(bytes_of(by_name[name]) == bytes_of(t));
  }
  Result init = saq::test::saqhost("run " + (dir / "init.toml").string() + " --set run.name=c --set stage.0.init=" +
                                   converted.string());
  CHECK(init.status == 0);
  CHECK(init.has("stage 0: weights from " + converted.string()));

  CHECK(saq::test::saqhost("convert " + old.string() + " " + converted.string()).has("exists; name a new file"));
  Result plain = saq::test::saqhost("convert " + converted.string() + " " + (dir / "again.pt").string());
  CHECK(plain.status == 2);
  CHECK(plain.has("not a TorchScript archive (a torch.save file needs no conversion"));
}
