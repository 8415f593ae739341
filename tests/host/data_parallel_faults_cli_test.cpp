// Faults in a data-parallel run on 2 processes: a rank killed mid-run stops every rank with a message naming it
// (the launcher at once, hand-started ranks through the heartbeats), Ctrl-C to the launcher saves one checkpoint
// and the run resumes, and bad launcher input (--nproc 0 or nested, ranks with different pipelines or world
// sizes, a rank that never comes, a port in use, an unreachable store) is a clear error.
#include "unit.hpp"

#include <chrono>
#include <thread>

#include "data_parallel_cli.hpp"

using namespace saq::dp_test;

TEST_CASE("a rank killed mid-run stops every rank, naming it: the launcher at once, hand-started ranks by heartbeat") {
  TempDir dir;
  const auto t0 = std::chrono::steady_clock::now();
  Result killed = run_in(dir, pipeline(kSgd, 16), "runs", "SAQ_FAULT_AFTER_STEP=3 SAQ_FAULT_RANK=1", "--nproc 2");
  CHECK(killed.status != 0);
  CHECK(killed.has("rank 1 (pid "));
  CHECK(killed.has("was killed by signal 9"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));

  saq::test::write_file(dir / "p.toml", pipeline(kSgd, 16));
  const std::string args = "run " + (dir / "p.toml").string() + " --set run.out_dir=" + (dir / "hand").string();
  const int port = free_port();
  Pair p = run_two(dir, hand_env(0, 2, port), hand_env(1, 2, port) + " SAQ_FAULT_AFTER_STEP=3 SAQ_FAULT_RANK=1", args, args);
  INFO(p.out0);
  CHECK(p.status1 == 128 + 9);
  CHECK(p.status0 == 1);
  CHECK(p.out0.find("rank 1 stopped answering") != std::string::npos);
}

TEST_CASE("bad launcher input: --nproc 0 or nested, ranks with different pipelines or world sizes, a rank that "
          "never comes, a port in use") {
  TempDir dir;
  saq::test::write_file(dir / "p.toml", pipeline(kSgd, 16));
  Result zero = saq::test::saqhost("run " + (dir / "p.toml").string() + " --nproc 0");
  CHECK(zero.status == 2);
  CHECK(zero.has("--nproc must be a number of processes in [1, 1024], got 0"));
  Result validate = saq::test::saqhost("validate " + (dir / "p.toml").string() + " --nproc 2");
  CHECK(validate.status == 2);
  CHECK(validate.has("--nproc is for run and resume, not validate"));

  Result nested = saq::test::saqhost_cmd(hand_env(0, 2, 1), "run " + (dir / "p.toml").string() + " --nproc 2");
  CHECK(nested.status == 2);
  CHECK(nested.has("--nproc: this process is already a rank of a launched world"));

  const std::string args = "run " + (dir / "p.toml").string() + " --set run.out_dir=" + (dir / "runs").string();
  int port = free_port();
  Pair differ = run_two(dir, hand_env(0, 2, port), hand_env(1, 2, port), args, args + " --set data.batch_size=8");
  CHECK(differ.status0 == 2);
  CHECK(differ.status1 == 2);
  for (const std::string* out : {&differ.out0, &differ.out1})
    CHECK(out->find("rank 1 runs a different pipeline or plugin set than rank 0") != std::string::npos);

  port = free_port();
  Pair sizes = run_two(dir, hand_env(0, 2, port), hand_env(1, 3, port), args + " --set run.dist_timeout_s=5",
                       args + " --set run.dist_timeout_s=5");
  CHECK(sizes.status1 == 2);
  CHECK(sizes.out1.find("rank 1 has a world of 3 processes, rank 0 of 2") != std::string::npos);
  // rank 0 stops with rank 1's reason, not with the process group's timeout
  CHECK(sizes.status0 == 2);
  CHECK(sizes.out0.find("rank 1 has a world of 3 processes, rank 0 of 2") != std::string::npos);
  CHECK(sizes.out0.find("timed out") == std::string::npos);

  // a rank that never comes: rank 0 names it at the timeout (it aborted, a thread left running, before)
  port = free_port();
  Result alone = saq::test::saqhost_cmd(hand_env(0, 2, port), args + " --set run.dist_timeout_s=2");
  CHECK(alone.status == 1);
  CHECK(alone.has("rank 0: rank 1 did not join the world of 2 within 2 s (run.dist_timeout_s)"));

  // a port something else listens on
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(listen(fd, 1) == 0);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  Result busy = saq::test::saqhost_cmd(hand_env(0, 2, ntohs(a.sin_port)), args + " --set run.dist_timeout_s=5");
  close(fd);
  CHECK(busy.status == 2);
  CHECK(busy.has("rank 0 cannot host the rendezvous store on 127.0.0.1:"));
}

TEST_CASE("Ctrl-C to the --nproc launcher reaches every worker once: one checkpoint, exit 130, then resume") {
  TempDir dir;
  std::string text = pipeline(kSgd, 16);
  text.replace(text.find("epochs = 2"), 10, "epochs = 400");  // long enough to be stopped mid-run
  saq::test::write_file(dir / "p.toml", text);
  const std::string cmd = saq::test::env("SAQHOST") + " run " + (dir / "p.toml").string() +
                          " --nproc 2 --set run.out_dir=" + (dir / "runs").string() + " > " + (dir / "out").string() +
                          " 2>&1 & pid=$!; for i in $(seq 600); do [ -f " + (dir / "runs/dp/checkpoints/resume.pt").string() +
                          " ] && break; sleep 0.1; done; kill -INT $pid; wait $pid; echo $? > " + (dir / "rc").string();
  std::string ignored;
  saq::test::run_command(cmd, ignored);
  const std::string out = saq::test::read_file(dir / "out");
  INFO(out);
  CHECK(std::stoi(saq::test::read_file(dir / "rc")) == 130);
  CHECK(saq::test::occurrences(out, "passing signal 2 to the 2 workers") == 1);
  CHECK(out.find("interrupted (SIGINT) at stage 0") != std::string::npos);
  CHECK(out.find("continue with: saqhost resume " + (dir / "runs/dp").string() + " --nproc 2") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "runs/dp/summary.json"));
  // the checkpoint is one both ranks resume from: they take one more step together, then stop on SIGTERM
  Result resumed = saq::test::saqhost_cmd("SAQ_FAULT_AFTER_STEP=1 SAQ_FAULT_SIGNAL=TERM",
                                          "resume " + (dir / "runs/dp").string() + " --nproc 2");
  INFO(resumed.output);
  CHECK(resumed.status == 143);
  CHECK(resumed.has("resuming at epoch"));
  CHECK(resumed.has("terminated (SIGTERM) at stage 0"));
}

TEST_CASE("an unreachable store is a clear error within the timeout") {
  TempDir dir;
  saq::test::write_file(dir / "p.toml", pipeline(kSgd, 16));
  const auto t0 = std::chrono::steady_clock::now();
  Result lonely = saq::test::saqhost_cmd(hand_env(1, 2, free_port()), "run " + (dir / "p.toml").string() +
                                                                         " --set run.dist_timeout_s=2");
  CHECK(lonely.status == 2);
  CHECK(lonely.has("rank 1 cannot reach the rendezvous store at 127.0.0.1:"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
}
