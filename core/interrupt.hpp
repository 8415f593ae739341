#pragma once
/// SIGINT and SIGTERM during a run: the handler only records the signal; the training loop finishes its step,
/// saves a checkpoint and stops (Interrupted). A second signal of the same kind kills at once, as usual.
namespace saq::host {

/// Installs the handlers for its lifetime and restores the previous ones after.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
};

/// The signal received since the guard was installed, or 0.
int pending_interrupt();
/// Makes `sig` pending as if this process had received it (a data-parallel run stops on every rank when one
/// rank got the signal).
void note_interrupt(int sig);

/// Test hook for crash safety: when the environment names a step (SAQ_FAULT_AFTER_STEP=N), the process sends
/// itself SAQ_FAULT_SIGNAL (KILL, the default, TERM or INT) right after its N-th training step in this process
/// (after that step's checkpoint, if it writes one). SAQ_FAULT_RANK=r limits it to data-parallel rank r.
void maybe_kill_after_step(long long steps_done_here);

}  // namespace saq::host
