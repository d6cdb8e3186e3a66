// One process-wide instance lock: flock(2) on a file, which the kernel drops
// when the last descriptor closes, so a daemon killed by SIGKILL frees it (a
// pid file would not). The holder writes its pid into the file, for the
// message of the process that finds it held.
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "binding.h"

namespace lockfile {
namespace {

// The pid the file names, or 0 (empty: its holder has not written it yet).
long readPid(int fd) {
  char buf[32] = {};
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  char* end = nullptr;
  long pid = strtol(buf, &end, 10);
  return end != buf && pid > 0 ? pid : 0;
}

// lockFile(path) -> { fd } | { errno, pid? }. Never blocks (LOCK_NB): the
// caller decides whether and how long to wait.
Napi::Value LockFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "lockFile(path): path must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>();
  Napi::Object o = Napi::Object::New(env);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
  if (fd < 0) {
    o.Set("errno", errno);
    return o;
  }
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB);
  while (r != 0 && errno == EINTR);
  if (r != 0) {
    int e = errno;
    long pid = e == EWOULDBLOCK ? readPid(fd) : 0;
    close(fd);
    o.Set("errno", e);
    if (pid > 0) o.Set("pid", static_cast<double>(pid));
    return o;
  }
  // Ours now: the pid of a holder that died is replaced, not appended to.
  char buf[32];
  int len = snprintf(buf, sizeof buf, "%ld\n", static_cast<long>(getpid()));
  if (ftruncate(fd, 0) == 0) (void)!pwrite(fd, buf, len, 0);
  o.Set("fd", fd);
  return o;
}

// unlockFile(fd): closing the descriptor drops the lock. The file stays:
// unlinking it would let a third process lock a new file while a second one
// still holds the old.
Napi::Value UnlockFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "unlockFile(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  close(info[0].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

}  // namespace

void initBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New(env, LockFn, "lockFile"));
  exports.Set("unlockFile", Napi::Function::New(env, UnlockFn, "unlockFile"));
}

}  // namespace lockfile
