#include "source/server/child_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace phoenix::server {

// A stdout or stderr pipe; outlives its ChildProcess until its close callback.
struct ChildProcess::Pipe {
  uv_pipe_t handle;
  ChildProcess* owner = nullptr;  // Null once the owner is gone.
  char buffer[16384];
  bool reading = false;
};

namespace {

std::string ExePath() {
  char path[4096];
  size_t size = sizeof(path);
  if (uv_exepath(path, &size) != 0) return "/proc/self/exe";
  return std::string(path, size);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(Dispatcher& dispatcher,
                                                                  const ProcessSpec& spec,
                                                                  ExitCallback on_exit,
                                                                  OutputCallback on_output) {
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->on_exit_ = std::move(on_exit);
  child->on_output_ = std::move(on_output);
  // phoenix --phoenix-exec-child <our pid> <command> <args...>
  std::string exe = ExePath();
  std::string parent = absl::StrCat(getpid());
  std::vector<std::string> argv_strings = {exe, std::string(kExecTrampolineFlag), parent,
                                           spec.command};
  argv_strings.insert(argv_strings.end(), spec.args.begin(), spec.args.end());
  std::vector<char*> argv;
  for (auto& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = spec.env;
  std::vector<char*> env;
  for (auto& entry : env_strings) env.push_back(entry.data());
  env.push_back(nullptr);

  for (int i = 0; i < 2; ++i) {
    auto* pipe = new Pipe;
    uv_pipe_init(dispatcher.loop(), &pipe->handle, 0);
    pipe->handle.data = pipe;
    pipe->owner = child.get();
    child->pipes_.push_back(pipe);
  }
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  for (int i = 0; i < 2; ++i) {
    stdio[i + 1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[i + 1].data.stream = reinterpret_cast<uv_stream_t*>(&child->pipes_[i]->handle);
  }
  uv_process_options_t options{};
  options.exit_cb = &ChildProcess::OnExit;
  options.file = exe.c_str();
  options.args = argv.data();
  options.env = env.data();
  options.cwd = spec.working_directory.empty() ? nullptr : spec.working_directory.c_str();
  // A process group (a session) of its own: Signal() reaches whatever the app starts, and a
  // Ctrl-C at phoenix's terminal does not reach the app behind phoenix's back.
  options.flags = UV_PROCESS_DETACHED;
  options.stdio_count = 3;
  options.stdio = stdio;
  child->process_ = new uv_process_t;
  child->process_->data = child.get();
  int rc = uv_spawn(dispatcher.loop(), child->process_, &options);
  if (rc != 0) {
    // libuv wants the handle closed even when the spawn failed.
    child->process_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(child->process_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
    child->process_ = nullptr;
    child->exited_ = true;
    return absl::InternalError(
        absl::StrCat("cannot start '", spec.command, "': ", uv_strerror(rc)));
  }
  child->pid_ = child->process_->pid;
  for (Pipe* pipe : child->pipes_) {
    pipe->reading = true;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&pipe->handle),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* p = static_cast<Pipe*>(h->data);
          *buf = uv_buf_init(p->buffer, sizeof(p->buffer));
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* p = static_cast<Pipe*>(s->data);
          if (n > 0) {
            if (p->owner != nullptr && p->owner->on_output_) {
              p->owner->on_output_(std::string_view(buf->base, static_cast<size_t>(n)));
            }
          } else if (n < 0) {
            uv_read_stop(s);  // EOF (or an error): the child closed it.
            p->reading = false;
          }
        });
  }
  return child;
}

void ChildProcess::OnExit(uv_process_t* handle, int64_t exit_status, int term_signal) {
  auto* self = static_cast<ChildProcess*>(handle->data);
  if (self == nullptr) return;
  self->exited_ = true;
  if (self->on_exit_) {
    ExitCallback callback = std::move(self->on_exit_);
    self->on_exit_ = nullptr;
    callback(exit_status, term_signal);  // May destroy `self`.
  }
}

void ChildProcess::Signal(int signum) {
  if (exited_ || pid_ <= 0) return;
  // The group first (the trampoline's exec keeps the pid, and the group is the pid's); the
  // child alone if the group is gone already.
  if (kill(-pid_, signum) != 0) kill(pid_, signum);
}

ChildProcess::~ChildProcess() {
  if (!exited_) Signal(SIGKILL);
  if (process_ != nullptr) {
    process_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(process_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
  }
  for (Pipe* pipe : pipes_) {
    pipe->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&pipe->handle),
             [](uv_handle_t* h) { delete static_cast<Pipe*>(h->data); });
  }
}

void RunExecTrampolineIfAsked(int argc, char** argv) {
  if (argc < 2 || kExecTrampolineFlag != argv[1]) return;
  if (argc < 4) {
    std::fprintf(stderr, "usage: phoenix %s PARENT_PID PROGRAM [ARGS...]\n", argv[1]);
    _exit(2);
  }
  // The signal is sent when the thread that forked us ends: phoenix's main thread, which
  // lives as long as phoenix.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    std::perror("phoenix: prctl(PR_SET_PDEATHSIG)");
    _exit(127);
  }
  // The parent may have died before the prctl: then no signal will come.
  if (getppid() != static_cast<pid_t>(std::atoll(argv[2]))) _exit(1);
  execvp(argv[3], argv + 3);
  std::fprintf(stderr, "phoenix: cannot run '%s': %s\n", argv[3], std::strerror(errno));
  _exit(127);
}

}  // namespace phoenix::server
