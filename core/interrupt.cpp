#include "interrupt.hpp"

#include <csignal>
#include <cstdlib>
#include <string>

namespace saq::host {

namespace {

volatile std::sig_atomic_t g_signal = 0;
struct sigaction g_old_int, g_old_term;

extern "C" void on_signal(int sig) { g_signal = sig; }

}  // namespace

InterruptGuard::InterruptGuard() {
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // the second signal takes the default action: an impatient user still gets out
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
  // A write past RLIMIT_FSIZE then fails with EFBIG and a clear message instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

int pending_interrupt() { return g_signal; }

void note_interrupt(int sig) {
  if (!g_signal) g_signal = sig;
}

void maybe_kill_after_step(long long steps_done_here) {
  static const char* at = std::getenv("SAQ_FAULT_AFTER_STEP");
  if (!at || std::atoll(at) != steps_done_here) return;
  // SAQ_FAULT_RANK=r: only data-parallel rank r (RANK) faults; the others go on
  static const char* only = std::getenv("SAQ_FAULT_RANK");
  static const char* rank = std::getenv("RANK");
  if (only && std::string(only) != (rank ? rank : "0")) return;
  const char* sig = std::getenv("SAQ_FAULT_SIGNAL");
  const std::string name = sig ? sig : "KILL";
  std::raise(name == "TERM" ? SIGTERM : name == "INT" ? SIGINT : SIGKILL);
}

}  // namespace saq::host
