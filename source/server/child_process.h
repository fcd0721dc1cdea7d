#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "source/common/dispatcher.h"

namespace phoenix::server {

// What to run: the program (a path or a name looked up in PATH), its arguments, the whole
// environment ("NAME=value"), and the directory to run it in ("" for phoenix's own).
struct ProcessSpec {
  std::string command;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string working_directory;
};

// One child process started with libuv (uv_spawn) on a dispatcher's loop, in a process group of
// its own, with its stdout and stderr read through pipes on that loop. How the child dies with
// phoenix: it is started through phoenix's exec trampoline (RunExecTrampolineIfAsked), which
// sets PR_SET_PDEATHSIG to SIGKILL and then execs the program, so even a SIGKILLed phoenix
// leaves no orphan; signals sent by Signal() go to the child's whole group.
class ChildProcess {
 public:
  // How it ended: the exit status, or the signal that killed it (then exit_status is 0).
  using ExitCallback = std::function<void(int64_t exit_status, int term_signal)>;
  // Bytes it wrote to stdout or stderr.
  using OutputCallback = std::function<void(std::string_view data)>;

  // Starts the child. `on_exit` runs once, on the loop, when it has ended (never after the
  // ChildProcess is destroyed).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(Dispatcher& dispatcher,
                                                             const ProcessSpec& spec,
                                                             ExitCallback on_exit,
                                                             OutputCallback on_output);
  // Kills the child's group with SIGKILL if it is still running, and lets go of its handles.
  ~ChildProcess();

  int pid() const { return pid_; }
  bool exited() const { return exited_; }
  // Sends `signum` to the child's process group (nothing once it has exited).
  void Signal(int signum);

 private:
  struct Pipe;
  ChildProcess() = default;
  static void OnExit(uv_process_t* handle, int64_t exit_status, int term_signal);

  uv_process_t* process_ = nullptr;  // Freed by its close callback.
  std::vector<Pipe*> pipes_;         // stdout, stderr; each freed by its close callback.
  int pid_ = 0;
  bool exited_ = false;
  ExitCallback on_exit_;
  OutputCallback on_output_;
};

// The hidden first argument that makes phoenix the trampoline of a supervised child.
inline constexpr std::string_view kExecTrampolineFlag = "--phoenix-exec-child";

// If argv is `phoenix --phoenix-exec-child <parent pid> <program> <args...>`: asks for SIGKILL
// when the parent dies (PR_SET_PDEATHSIG), gives up if the parent is already gone, and execs
// the program (never returns; exit 127 if the exec fails). Otherwise returns at once. main()
// calls it first.
void RunExecTrampolineIfAsked(int argc, char** argv);

}  // namespace phoenix::server
