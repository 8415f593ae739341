// Loading a pipeline: the messages of each kind of mistake, defaults, --set overrides and the resolved round trip.
#include "unit.hpp"

#include <string>
#include <vector>

#include "errors.hpp"
#include "pipeline.hpp"

namespace saq::host {

namespace {

// Line numbers in the messages below count from the top of this text.
const std::string base = R"([data]
use = "synthetic"
train_samples = 64

[model]
use = "small_cnn"

[optimizer]
use = "sgd"
lr = 0.1

[[stage]]
use = "train"
epochs = 2
)";

/// `text` with its one occurrence of `from` replaced by `to`.
std::string edit(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "no '", from, "' in the pipeline");
  return text.replace(at, from.size(), to);
}

struct Fixture {
  test::TempDir dir;
  std::string file = (dir / "pipeline.toml").string();
  std::string error(const std::string& text, const std::vector<std::string>& overrides = {}) {
    return test::pipeline_error(dir, text, overrides);
  }
  Pipeline load(const std::string& text, const std::vector<std::string>& overrides = {}) {
    return test::pipeline_from_text(dir, text, overrides);
  }
};

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
using saq::test::contains;

}  // namespace

TEST_CASE_FIXTURE(Fixture, "a valid pipeline loads") { CHECK(error(base) == ""); }

TEST_CASE_FIXTURE(Fixture, "a TOML syntax error names the file, line and column") {
  std::string msg = error(edit(base, "train_samples = 64", "train_samples = = 64"));
  INFO(msg);
  CHECK(starts_with(msg, file + ":3:"));
  CHECK(contains(msg, ": TOML syntax error: "));
}

TEST_CASE_FIXTURE(Fixture, "an unknown plugin name suggests the closest and lists what exists") {
  std::string msg = error(edit(base, "\"synthetic\"", "\"synthetik\""));
  INFO(msg);
  CHECK(starts_with(msg, file + ":2:7: data.use: unknown dataset 'synthetik'; did you mean 'synthetic'?"));
  CHECK(contains(msg, "; available: " + join(test::registry().names(Kind::Dataset))));
}

TEST_CASE_FIXTURE(Fixture, "an unknown key names where it is, suggests the closest key and lists the accepted ones") {
  std::string msg = error(edit(base, "lr = 0.1", "lrr = 0.1"));
  CHECK(msg == file +
                   ":10:1: optimizer.lrr: unknown key for optimizer 'sgd'; did you mean 'lr'? "
                   "(accepted: lr, momentum, dampening, nesterov, weight_decay)");
}

TEST_CASE_FIXTURE(Fixture, "a value of the wrong type says what was expected and what came") {
  CHECK(error(edit(base, "lr = 0.1", "lr = \"fast\"")) ==
        file + ":10:6: optimizer.lr: expected a number, got string");
  CHECK(error(edit(base, "epochs = 2", "epochs = 2.5")) ==
        file + ":14:10: stage[0].epochs: expected an integer, got float");
}

TEST_CASE_FIXTURE(Fixture, "a value out of range names the range") {
  CHECK(error(edit(base, "lr = 0.1", "lr = 0")) == file + ":10:6: optimizer.lr: must be in (0, inf), got 0");
  CHECK(error(edit(base, "epochs = 2", "epochs = 0")) == file + ":14:10: stage[0].epochs: must be in [1, inf), got 0");
}

TEST_CASE_FIXTURE(Fixture, "a string outside its choices lists them") {
  CHECK(error(base + "schedule = \"linear\"\n") ==
        file + ":15:12: stage[0].schedule: must be one of \"constant\", \"cosine\", \"multistep\", \"step\", "
               "got \"linear\"");
}

TEST_CASE_FIXTURE(Fixture, "an unknown section suggests the closest") {
  std::string msg = error(base + "[optimiser]\nlr = 1\n");
  INFO(msg);
  CHECK(starts_with(msg, file + ":15:"));
  CHECK(contains(msg, ": optimiser: unknown section; did you mean 'optimizer'? "
                      "(sections: run, data, model, quantizer, optimizer, stage)"));
}

TEST_CASE_FIXTURE(Fixture, "a missing section, use or stage is named") {
  CHECK(starts_with(error(edit(base, "[data]\nuse = \"synthetic\"\ntrain_samples = 64\n", "")),
                    file + ": missing section [data] (which dataset to use; available: "));

  std::string no_use = error(edit(base, "use = \"small_cnn\"", "width = 8"));
  INFO(no_use);
  CHECK(starts_with(no_use, file + ":5:"));
  CHECK(contains(no_use, ": model: missing 'use' (which model to use; available: " +
                             join(test::registry().names(Kind::Model)) + ")"));

  CHECK(starts_with(error(edit(base, "[[stage]]\nuse = \"train\"\nepochs = 2\n", "")), file + ": no [[stage]]"));
}

TEST_CASE_FIXTURE(Fixture, "an unknown stage kind suggests the closest") {
  CHECK(error(edit(base, "use = \"train\"", "use = \"trian\"")) ==
        file + ":13:7: stage[0].use: unknown stage 'trian'; did you mean 'train'? (stages: train, eval, search, export, analyze)");
}

TEST_CASE_FIXTURE(Fixture, "every default is filled in, with 'default' as its origin") {
  Pipeline p = load(base);
  for (const auto& spec : test::registry().require(Kind::Optimizer, "sgd", "test").desc.schema.specs())
    CHECK_MESSAGE(p.optimizer->has(spec.name), spec.name);
  // Defaults written in sgd.cpp, host_schema.cpp and synthetic.cpp:
  CHECK(p.optimizer->get<double>("momentum") == 0.9);
  CHECK(p.optimizer->entries().at("momentum").origin == "default");
  CHECK(p.optimizer->entries().at("lr").origin == file + ":10:6");
  CHECK(p.data->get<std::int64_t>("batch_size") == 128);
  CHECK(p.data->get<std::int64_t>("eval_batch_size") == 500);
  CHECK(p.data->get<std::int64_t>("classes") == 10);
  CHECK(p.stages.at(0)->get<std::string>("schedule") == "cosine");
  CHECK(p.run->get<std::string>("name") == "pipeline");  // the file's stem

  std::string resolved = p.resolved_toml();
  for (const auto& section : {p.run, p.data, p.model, p.optimizer, p.stages.at(0)})
    for (const auto& entry : section->entries()) {
      const std::string& key = entry.first;  // a plain name: clang cannot capture structured bindings in C++17
      CHECK_MESSAGE(contains(resolved, "\n" + key + " = "), key);
    }
  CHECK(contains(resolved, "\n[optimizer]\nuse = \"sgd\"\n"));
  CHECK(contains(resolved, "\nmomentum = 0.9\n"));
  CHECK(contains(resolved, "\nepochs = 2\n"));
}

TEST_CASE_FIXTURE(Fixture, "--set overrides a key, with '--set' as its origin") {
  Pipeline p = load(base, {"optimizer.lr=0.5", "optimizer.nesterov=true", "data.classes=3"});
  CHECK(p.optimizer->get<double>("lr") == 0.5);
  CHECK(p.optimizer->get<bool>("nesterov"));
  CHECK(p.data->get<std::int64_t>("classes") == 3);
  CHECK(p.optimizer->entries().at("lr").origin == "--set optimizer.lr=0.5");
}

TEST_CASE_FIXTURE(Fixture, "--set addresses stages by index or all of them with *") {
  const std::string two = base + "\n[[stage]]\nuse = \"train\"\nepochs = 2\n";
  Pipeline all = load(two, {"stage.*.epochs=1"});
  CHECK(all.stages.at(0)->get<std::int64_t>("epochs") == 1);
  CHECK(all.stages.at(1)->get<std::int64_t>("epochs") == 1);
  Pipeline first = load(two, {"stage.0.epochs=3"});
  CHECK(first.stages.at(0)->get<std::int64_t>("epochs") == 3);
  CHECK(first.stages.at(1)->get<std::int64_t>("epochs") == 2);
  CHECK(error(two, {"stage.5.epochs=1"}) == "--set stage.5.epochs=1: index 5 is past the end (2 elements)");
  CHECK(error(two, {"stage.x.epochs=1"}) ==
        "--set stage.x.epochs=1: 'x' is not an index into an array (use 0, 1, ... or *)");
}

TEST_CASE_FIXTURE(Fixture, "--set reads a bare word as a string and refuses text without '='") {
  Pipeline p = load(base, {"run.name=hello", "run.device=cpu", "run.out_dir=\"with space\""});
  CHECK(p.run->get<std::string>("name") == "hello");
  CHECK(p.run->get<std::string>("device") == "cpu");
  CHECK(p.run->get<std::string>("out_dir") == "with space");
  CHECK(error(base, {"optimizer.lr"}) == "--set optimizer.lr: expected section.key=value");
}

TEST_CASE_FIXTURE(Fixture, "a bad value given with --set is blamed on --set") {
  CHECK(error(base, {"optimizer.lr=-1"}) == "--set optimizer.lr=-1: optimizer.lr: must be in (0, inf), got -1");
  CHECK(error(base, {"stage.0.epochs=0"}) == "--set stage.0.epochs=0: stage[0].epochs: must be in [1, inf), got 0");
}

TEST_CASE_FIXTURE(Fixture, "a bad value in the file is not blamed on a --set of another stage") {
  const std::string two = base + "\n[[stage]]\nuse = \"train\"\nepochs = 0\n";
  std::string e = error(two, {"stage.0.epochs=3"});
  CHECK(starts_with(e, file + ":"));
  CHECK(contains(e, ": stage[1].epochs: must be in [1, inf), got 0"));
}

TEST_CASE_FIXTURE(Fixture, "resolved_toml() loads again to the same resolved text") {
  const std::string text = R"([run]
name = 'quote " and \ backslash'
seed = 3

[data]
use = "synthetic"
size = 8

[model]
use = "small_cnn"
width = 4

[optimizer]
use = "sgd"
lr = 1
weight_decay = 5e-4

[[stage]]
use = "train"
schedule = "multistep"
milestones = [2, 4]
warmup_epochs = 0.1

[[stage.group]]
match = "*.bias"
lr = 0.05

[[stage]]
use = "eval"
split = "train"
)";
  Pipeline first = load(text);
  const std::string resolved = first.resolved_toml();
  CHECK(contains(resolved, "\nname = \"quote \\\" and \\\\ backslash\"\n"));
  CHECK(contains(resolved, "\nlr = 1.0\n"));  // a float key written as an integer stays a float
  CHECK(contains(resolved, "\nweight_decay = 0.0005\n"));
  CHECK(contains(resolved, "\nmilestones = [2, 4]\n"));
  CHECK(contains(resolved, "\ngroup = [{ lr = 0.05, match = \"*.bias\" }]\n"));

  Pipeline second = load(resolved);  // the same file name, so the header line matches too
  CHECK(second.resolved_toml() == resolved);
  CHECK(second.run->get<std::string>("name") == "quote \" and \\ backslash");
  CHECK(second.stages.at(0)->tables("group").at(0)->get<double>("lr") == 0.05);
}

}  // namespace saq::host
