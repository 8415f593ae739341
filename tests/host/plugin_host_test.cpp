// The loader: fingerprint check, bad libraries skipped or refused, search path, exports, lifetime.
#include "unit.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

#include "errors.hpp"
#include "plugin_host.hpp"
#include "support.hpp"

using namespace saq;
namespace fs = std::filesystem;

namespace {
fs::path fixture(const std::string& name) { return fs::path(test::env("SAQ_FIXTURE_DIR")) / ("libfixture_" + name + ".so"); }
fs::path plugin_dir() { return test::env("SAQ_PLUGIN_PATH"); }
}  // namespace

TEST_CASE("a plugin built for another SDK ABI is refused, naming both versions") {
  host::Registry reg;
  std::string why = host::load_plugin(reg, fixture("wrong_abi"));
  CHECK(why.find("'from_the_future'") != std::string::npos);
  CHECK(why.find("built for SAQ ABI " + std::to_string(SAQ_ABI_VERSION + 1)) != std::string::npos);
  CHECK(why.find("this host is SAQ ABI " + std::to_string(SAQ_ABI_VERSION)) != std::string::npos);
  CHECK(reg.all().empty());
}

TEST_CASE("a library without the entry point is not a plugin") {
  host::Registry reg;
  CHECK(host::load_plugin(reg, fixture("no_entry")).find("not a saq plugin") != std::string::npos);
  CHECK(host::load_plugin(reg, "/nonexistent/libnothing.so").find("cannot be opened") != std::string::npos);
}

TEST_CASE("a registration that throws leaves nothing of the plugin behind") {
  host::Registry reg;
  std::string why = host::load_plugin(reg, fixture("throws_in_register"));
  CHECK(why.find("registration exploded on purpose") != std::string::npos);
  CHECK(reg.find(Kind::Optimizer, "half_registered") == nullptr);
}

TEST_CASE("a folder is searched recursively; bad libraries there are skipped, a named bad file is an error") {
  test::TempDir dir;
  fs::create_directories(dir / "nested");
  fs::copy_file(fixture("wrong_abi"), dir / "nested" / "libwrong.so");
  fs::copy_file(plugin_dir() / "optimizer/torch_optim/libsaq_torch_optim.so", dir / "libopt.so");
  host::Registry reg;
  host::load_plugins(reg, {dir.path()});
  CHECK(reg.find(Kind::Optimizer, "sgd") != nullptr);
  REQUIRE(reg.skipped.size() == 1);
  CHECK(reg.skipped[0].path.find("libwrong.so") != std::string::npos);

  host::Registry strict;
  try {
    host::load_plugins(strict, {dir / "nested" / "libwrong.so"});
    FAIL("a named library with the wrong ABI must be an error");
  } catch (const host::InputError& e) {
    CHECK(std::string(e.what()).find("libwrong.so") != std::string::npos);
  }
}

TEST_CASE("the first library to register a name wins; the second is reported with both paths") {
  test::TempDir dir;
  fs::copy_file(plugin_dir() / "optimizer/torch_optim/libsaq_torch_optim.so", dir / "libcopy.so");
  host::Registry reg;
  host::load_plugins(reg, {dir.path(), plugin_dir()});
  const host::Component* sgd = reg.find(Kind::Optimizer, "sgd");
  REQUIRE(sgd != nullptr);
  CHECK(sgd->plugin->path.find("libcopy.so") != std::string::npos);
  bool reported = false;
  for (const auto& w : reg.warnings)
    reported |= w.find("libsaq_torch_optim.so") != std::string::npos && w.find("libcopy.so") != std::string::npos;
  CHECK(reported);
}

TEST_CASE("the search path: --plugin-path, then SAQ_PLUGIN_PATH entries, in order") {
  std::string old = test::env("SAQ_PLUGIN_PATH");
  ::setenv("SAQ_PLUGIN_PATH", "/a:/b::/c", 1);
  auto paths = host::plugin_search_path({"/cli"});
  ::setenv("SAQ_PLUGIN_PATH", old.c_str(), 1);
  REQUIRE(paths.size() == 4);  // SAQ_NO_DEFAULT_PLUGINS is set by the test environment
  CHECK(paths[0] == "/cli");
  CHECK(paths[1] == "/a");
  CHECK(paths[2] == "/b");
  CHECK(paths[3] == "/c");
}

TEST_CASE("every plugin exports exactly one function, saq_plugin_info") {
  for (const auto& e : fs::recursive_directory_iterator(plugin_dir())) {
    if (e.path().extension() != ".so") continue;
    std::string out;
    REQUIRE(test::run_command("nm -D --defined-only " + e.path().string() + " | awk '$2 == \"T\" {print $3}'", out) == 0);
    CAPTURE(e.path().string());
    CHECK(out == "saq_plugin_info\n");
  }
}

TEST_CASE("an object keeps its plugin alive after the registry is gone; it is destroyed exactly once") {
  std::shared_ptr<Model> model;
  {
    host::Registry reg;
    REQUIRE(host::load_plugin(reg, fixture("counted")).empty());
    Params params("model", "counted", "test");
    Context ctx;
    ctx.data.num_classes = 3;
    model = reg.make<Model>(reg.require(Kind::Model, "counted", "test"), params, ctx);
  }
  void* handle = ::dlopen(fixture("counted").c_str(), RTLD_NOW | RTLD_NOLOAD);
  REQUIRE(handle != nullptr);  // resident
  auto live = reinterpret_cast<int (*)()>(::dlsym(handle, "saq_fixture_live_models"));
  REQUIRE(static_cast<bool>(live));
  CHECK(live() == 1);
  CHECK(model->forward(torch::ones({2, 4})).sizes() == std::vector<std::int64_t>{2, 3});
  model.reset();
  CHECK(live() == 0);
  ::dlclose(handle);
}

TEST_CASE("a factory that throws is reported with the component and its library") {
  host::Registry reg;
  REQUIRE(host::load_plugin(reg, fixture("throws_in_factory")).empty());
  Params params("model", "exploding", "test");
  params.set("size", std::int64_t{7}, "test");
  try {
    reg.make<Model>(reg.require(Kind::Model, "exploding", "test"), params, Context{});
    FAIL("the factory must throw");
  } catch (const std::runtime_error& e) {
    std::string m = e.what();
    CHECK(m.find("model 'exploding'") != std::string::npos);
    CHECK(m.find("libfixture_throws_in_factory.so") != std::string::npos);
    CHECK(m.find("constructor failed on purpose (size 7)") != std::string::npos);
  }
}
