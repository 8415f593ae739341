// saqhost analyze: two runs of one model side by side; the slice at α = 0 is the evaluated loss; a seed gives the
// same numbers again; the page is self-contained with every plot inline, and headless Chromium renders it;
// bad input (no checkpoint, two architectures, ρ ≤ 0, an unknown budget) is exit 2 naming it.
#include "unit.hpp"

#include <filesystem>
#include <fstream>

#include "export_cli.hpp"

namespace {

namespace fs = std::filesystem;
using saq::test::TempDir;

using saq::test::contains;

void train(const TempDir& dir, const std::string& name, const std::string& model, const std::string& optimizer = "") {
  std::string text = saq::export_test::pipeline((dir / "runs").string(), model, "use = \"liq_wn\"", 1, 12, optimizer);
  text.replace(text.find("name = \"e\""), 10, "name = \"" + name + "\"");
  saq::test::CliResult r = saq::test::saqhost_on(dir, text, "run", "-q");
  REQUIRE_MESSAGE(r.status == 0, r.output);
}

/// `expr` of the analysis.json at `path`, printed by Python (json).
std::string json_value(const fs::path& path, const std::string& expr) {
  std::string out;
  saq::test::run_command("/usr/bin/python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); print(" + expr + ")' " +
                             path.string(), out);
  return out.substr(0, out.find('\n'));
}

}  // namespace

TEST_CASE("analyze: two runs side by side, the slice through the evaluated loss, the same numbers for a seed") {
  TempDir dir;
  train(dir, "qat", "use = \"small_cnn\"\nwidth = 4");
  train(dir, "sam", "use = \"small_cnn\"\nwidth = 4", "");
  const std::string runs = (dir / "runs" / "qat").string() + " " + (dir / "runs" / "sam").string();
  saq::test::CliResult r = saq::test::saqhost("analyze " + runs + " -o " + (dir / "a").string() + " --rho 0.1 --rho 0.3");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const fs::path json = dir / "a" / "analysis.json";
  CHECK(json_value(json, "len(a[\"runs\"])") == "2");
  CHECK(json_value(json, "a[\"rho\"]") == "[0.1, 0.3]");
  for (int run = 0; run < 2; ++run) {
    const std::string at = "a[\"runs\"][" + std::to_string(run) + "]";
    // α = 0 (the middle of 21 points) is the model itself: the slice's loss there is the evaluated loss, exactly
    CHECK(json_value(json, at + "[\"slices\"][0][\"alpha\"][10] == 0") == "True");
    CHECK(json_value(json, at + "[\"slices\"][0][\"train_loss\"][10] == " + at + "[\"train_loss\"]") == "True");
    CHECK(json_value(json, at + "[\"slices\"][1][\"test_loss\"][10] == " + at + "[\"test_loss\"]") == "True");
    CHECK(json_value(json, at + "[\"slices\"][0][\"level_changes\"][10] == 0") == "True");
    CHECK(json_value(json, at + "[\"slices\"][0][\"level_changes\"][0] > 0") == "True");
    // sharpness: 2 targets × 2 m × 2 ρ, the ascent never below the one-step estimate, rising with ρ
    CHECK(json_value(json, "len(" + at + "[\"sharpness\"])") == "8");
    CHECK(json_value(json, "all(p[\"ascent\"] >= p[\"one_step\"] for p in " + at + "[\"sharpness\"])") == "True");
    // the latent weights as a float model: its own loss (not the quantized one), its slice through it at α = 0
    const std::string fp = at + "[\"fp32_latent\"]";
    CHECK(json_value(json, fp + "[\"train_loss\"][10] == " + fp + "[\"loss\"]") == "True");
    CHECK(json_value(json, fp + "[\"loss\"] != " + at + "[\"train_loss\"]") == "True");
    CHECK(json_value(json, "len(" + fp + "[\"sharpness\"])") == "2");
  }
  // the same seed, the same numbers
  r = saq::test::saqhost("analyze " + runs + " -o " + (dir / "b").string() + " --rho 0.1 --rho 0.3 -q");
  REQUIRE(r.status == 0);
  CHECK(saq::test::read_file(json) == saq::test::read_file(dir / "b" / "analysis.json"));

  // the page: self-contained, every plot inline and beside it as a file
  const std::string page = saq::test::read_file(dir / "a" / "index.html");
  CHECK(!contains(page, "<script"));
  CHECK(contains(page, "<td>fp32 latent</td>"));
  CHECK(!contains(page, "src=\"http"));
  CHECK(!contains(page, "href=\"http"));
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir / "a"))
    if (e.path().extension() == ".svg") {
      ++files;
      CHECK(contains(page, "href=\"" + e.path().filename().string() + "\""));
    }
  CHECK(files == 5);  // two slices, two level-change plots, sharpness
  CHECK(saq::export_test::split(page, '\n').size() > 10);
  std::size_t inline_svgs = 0;
  for (auto at = page.find("<svg"); at != std::string::npos; at = page.find("<svg", at + 1)) ++inline_svgs;
  CHECK(inline_svgs == 5);
  // ... and a browser draws it: headless Chromium's screenshot is a 1200-pixel-wide PNG with something on it
  std::string out;
  const fs::path png = dir / "page.png";
  const int status = saq::test::run_command(
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync --user-data-dir=" +
          (dir / "chromium").string() + " --window-size=1200,1400 --screenshot=" + png.string() + " file://" +
          (dir / "a" / "index.html").string(),
      out);
  REQUIRE_MESSAGE(status == 0, out);
  const std::string bytes = saq::test::read_file(png);
  REQUIRE(bytes.size() > 20000);
  CHECK(bytes.substr(1, 3) == "PNG");
  const auto be32 = [&](std::size_t at) {
    return (static_cast<unsigned char>(bytes[at]) << 24) | (static_cast<unsigned char>(bytes[at + 1]) << 16) |
           (static_cast<unsigned char>(bytes[at + 2]) << 8) | static_cast<unsigned char>(bytes[at + 3]);
  };
  CHECK(be32(16) == 1200);  // IHDR width
}

TEST_CASE("analyze: bad input is exit 2 and says what") {
  TempDir dir;
  train(dir, "a", "use = \"small_cnn\"\nwidth = 4");
  train(dir, "b", "use = \"small_cnn\"\nwidth = 8");
  const std::string a = (dir / "runs" / "a").string(), b = (dir / "runs" / "b").string();
  saq::test::CliResult r = saq::test::saqhost("analyze " + a + " " + b + " -o " + (dir / "x").string());
  CHECK(r.status == 2);
  CHECK(r.has("are not the same model"));
  CHECK(r.has("analyze them separately"));
  r = saq::test::saqhost("analyze " + a + " --rho=-0.1");
  CHECK(r.status == 2);
  CHECK(r.has("every ρ must be > 0, got -0.1"));
  r = saq::test::saqhost("analyze " + a + " --budget huge");
  CHECK(r.status == 2);
  CHECK(r.has("--budget 'huge' is neither fast nor full"));
  fs::create_directories(dir / "young");
  fs::copy_file(dir / "runs" / "a" / "config.resolved.toml", dir / "young" / "config.resolved.toml");
  r = saq::test::saqhost("analyze " + (dir / "young").string());
  CHECK(r.status == 2);
  CHECK(r.has("analyze: "));
  CHECK(r.has("no such checkpoint (the run saved none yet)"));
  r = saq::test::saqhost("analyze");
  CHECK(r.status == 2);
  CHECK(r.has("which runs?"));
  CHECK(!fs::exists(dir / "x"));
}

TEST_CASE("analyze: a pipeline's analyze stage writes the run's own page") {
  TempDir dir;
  std::string text = saq::export_test::pipeline((dir / "runs").string(), "use = \"small_cnn\"\nwidth = 4",
                                                "use = \"liq_wn\"", 1, 12);
  text += "[[stage]]\nuse = \"analyze\"\nrho = [0.2]\n";
  saq::test::CliResult r = saq::test::saqhost_on(dir, text, "run", "-q");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const fs::path json = dir / "runs" / "e" / "analysis" / "analysis.json";
  REQUIRE(fs::exists(dir / "runs" / "e" / "analysis" / "index.html"));
  CHECK(json_value(json, "len(a[\"runs\"])") == "1");
  CHECK(json_value(json, "a[\"rho\"]") == "[0.2]");
  CHECK(json_value(json, "a[\"runs\"][0][\"slices\"][0][\"train_loss\"][10] == a[\"runs\"][0][\"train_loss\"]") == "True");
  text.replace(text.find("rho = [0.2]"), 11, "rho = [0.0]");
  r = saq::test::saqhost_on(dir, text, "validate", "-q");  // refused before anything runs
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.has("stage[1].rho: must be in (0, inf), got 0"), r.output);
}
