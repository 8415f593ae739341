#include "launcher.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "errors.hpp"

namespace saq::host {

namespace {

volatile sig_atomic_t g_launcher_signal = 0;
extern "C" void on_launcher_signal(int sig) { g_launcher_signal = sig; }

/// A port the kernel reports free on 127.0.0.1 (rank 0 binds it right after; the window is small).
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw RunError(std::string("--nproc: cannot open a socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw RunError(std::string("--nproc: no free port on 127.0.0.1: ") + std::strerror(errno));
  }
  close(fd);
  return ntohs(a.sin_port);
}

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

int exit_code(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

}  // namespace

std::vector<std::string> without_nproc(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--nproc") ++i;
    else if (a.rfind("--nproc=", 0) != 0) out.push_back(a);
  }
  return out;
}

int launch_local(int nproc, const std::vector<std::string>& args, spdlog::logger& log) {
  const int port = free_port();
  struct sigaction sa {}, old_int, old_term;
  sa.sa_handler = on_launcher_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  g_launcher_signal = 0;
  log.info("starting {} worker processes on 127.0.0.1:{}", nproc, port);

  std::vector<pid_t> pids(static_cast<size_t>(nproc), -1);
  pid_t group = 0;
  for (int r = 0; r < nproc; ++r) {
    pid_t pid = fork();
    if (pid < 0) throw RunError(std::string("--nproc: fork failed: ") + std::strerror(errno));
    if (pid == 0) {
      // The workers share a process group of their own: a Ctrl-C on the terminal reaches the launcher only,
      // which passes it on once (a second one to a worker would kill it without its checkpoint).
      setpgid(0, group);
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // the launcher killed: no orphan keeps training
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      setenv("SAQ_LAUNCHER", "1", 1);
      unsetenv("TORCHELASTIC_USE_AGENT_STORE");
      std::vector<char*> argv;
      std::string self = "/proc/self/exe";
      argv.push_back(self.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(self.c_str(), argv.data());
      std::fprintf(stderr, "saqhost: --nproc: cannot start rank %d: %s\n", r, std::strerror(errno));
      _exit(127);
    }
    if (group == 0) group = pid;
    setpgid(pid, group);
    pids[static_cast<size_t>(r)] = pid;
  }

  int first_failure = 0, running = nproc, forwarded = 0;
  std::chrono::steady_clock::time_point kill_at{};
  bool stopping = false;
  while (running > 0) {
    if (g_launcher_signal) {
      forwarded = g_launcher_signal;
      log.info("passing signal {} to the {} workers", forwarded, running);
      kill(-group, forwarded);
      g_launcher_signal = 0;  // a second Ctrl-C is passed on too: the workers then stop at once
    }
    int status = 0;
    pid_t pid = waitpid(-group, &status, WNOHANG);
    if (pid > 0) {
      --running;
      int rank = 0;
      while (pids[static_cast<size_t>(rank)] != pid) ++rank;
      pids[static_cast<size_t>(rank)] = -1;
      if (exit_code(status) != 0 && first_failure == 0) {
        first_failure = exit_code(status);
        if (!forwarded) {
          log.error("rank {} (pid {}) {}; stopping the other ranks", rank, pid, how_it_ended(status));
          stopping = true;
          kill(-group, SIGTERM);
          kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        }
      }
      continue;
    }
    if (stopping && std::chrono::steady_clock::now() > kill_at) kill(-group, SIGKILL), stopping = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return first_failure;
}

}  // namespace saq::host
