/*
 * dh-init: the entrypoint of every Dockhand exec container (docs/exec-runtime.md).
 *
 * Bind-mounted read-only and statically linked, so it runs in any image, with or without a
 * shell or libc. It waits on stdin for one run spec, runs it as a child, reaps every process
 * as PID 1 must, and exits with the child's exit code (128 + signal when it was killed), so
 * the result comes from the engine's wait, never from a line of output.
 *
 * Run spec (written by runtimes/exec-spec.ts):
 *   "DH1 <length>\n" then <length> bytes of records, each a tag byte, a value and a NUL:
 *   N<nonce>   once, [0-9a-f]{16,64}: marks the lines this program writes to stderr
 *   C<dir>     once, absolute: the working directory (made when missing, as mkdir -p)
 *   A<arg>     one or more: argv, in order; argv[0] is looked up on PATH
 *   E<k>=<v>   any: environment over the container's own
 * Anything else is refused whole (exit 125) before anything runs.
 *
 * Function containers start it as `dh-init --connect <socket> <program> [args...]`: it connects
 * twice to the host's unix socket, opening each connection with "<token> io\n" / "<token> err\n"
 * (the token comes in DOCKHAND_CHANNEL_TOKEN, which it removes from the environment), makes the
 * first its stdin and stdout and the second its stderr, and execs the program (looked up on PATH)
 * in its place: the function's runtime talks to the worker over a socket the kernel carries, not
 * through dockerd and a containerd shim (runtimes/socket-channel.ts). Everything the runtime's
 * children print still shares its stdout stream.
 *
 * Lines to the host, on stderr, start with "\x1eDH:<nonce>:" (the command never sees the
 * nonce, so it cannot forge one):
 *   error:<sentence>\n  the command could not start (exit 127 when not found, else 126)
 *   done\n              the command ended and every other process is gone; dh-init then waits
 *                       up to 5 s for one byte (or EOF) on stdin, so the host can read the
 *                       container's cgroup counters before the cgroup disappears.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SPEC (8u << 20)
#define MAX_ARGS 4096
#define MAX_ENV 4096

static pid_t child = -1;
static const char *nonce = "";

static void write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

/* One control line: \x1eDH:<nonce>:<what><detail>\n, detail stripped of control bytes. */
static void report(const char *what, const char *detail) {
  char line[1024];
  int n = snprintf(line, sizeof line, "\x1e" "DH:%s:%s", nonce, what);
  if (n < 0) return;
  size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  for (const char *d = detail; d && *d && len < sizeof line - 2; d++)
    line[len++] = ((unsigned char)*d < 0x20 || *d == 0x7f) ? '?' : *d;
  line[len++] = '\n';
  write_all(2, line, len);
}

static void fail_malformed(const char *why) {
  /* No trusted nonce yet: a plain line, and the engine's exit code 125 says the rest. */
  char line[256];
  int n = snprintf(line, sizeof line, "dh-init: malformed run spec: %s\n", why);
  if (n > 0) write_all(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  _exit(125);
}

static int read_full(int fd, char *buf, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, buf, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    buf += r;
    n -= (size_t)r;
  }
  return 0;
}

static int is_hex(const char *s, size_t min, size_t max) {
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return 0;
  return n >= min && n <= max;
}

/* mkdir -p, as the container user: where it may not write, chdir then reports why. */
static void make_dirs(char *dir) {
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(dir, 0755);
    *p = '/';
  }
  mkdir(dir, 0755);
}

static void forward(int sig) {
  if (child > 0) kill(child, sig);
}

/* One connection to the host's socket, introduced by "<token> <role>\n", or -1 with errno. */
static int connect_to(const char *path, const char *token, const char *role) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(addr.sun_path, path, strlen(path));
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  int r;
  do r = connect(s, (struct sockaddr *)&addr, sizeof addr);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    int err = errno;
    close(s);
    errno = err;
    return -1;
  }
  char hello[160];
  int n = snprintf(hello, sizeof hello, "%s %s\n", token, role);
  if (n < 0 || (size_t)n >= sizeof hello) {
    close(s);
    errno = EINVAL;
    return -1;
  }
  write_all(s, hello, (size_t)n);
  return s;
}

/* --connect <socket> <program> [args...]: stdio over the socket, then the program in our place. */
static int run_connected(int argc, char **argv) {
  if (argc < 4 || argv[3][0] == '\0') {
    static const char usage[] = "dh-init: usage: DOCKHAND_CHANNEL_TOKEN=<token> dh-init --connect <socket> <program> [args...]\n";
    write_all(2, usage, sizeof usage - 1);
    return 125;
  }
  /* Not dumpable until the exec: a process of the same uid cannot read the token from our memory. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  const char *given = getenv("DOCKHAND_CHANNEL_TOKEN");
  if (!given || !is_hex(given, 32, 128)) {
    static const char missing[] = "dh-init: DOCKHAND_CHANNEL_TOKEN is missing or not 32-128 hex digits\n";
    write_all(2, missing, sizeof missing - 1);
    return 125;
  }
  char token[129];
  memcpy(token, given, strlen(given) + 1);
  /* The runtime and what it starts never see the token. */
  unsetenv("DOCKHAND_CHANNEL_TOKEN");
  int io = connect_to(argv[2], token, "io");
  int err = io < 0 ? -1 : connect_to(argv[2], token, "err");
  if (io < 0 || err < 0) {
    char msg[512];
    int n = snprintf(msg, sizeof msg, "dh-init: cannot connect to %.300s: %s\n", argv[2], strerror(errno));
    if (n > 0) write_all(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    return 125;
  }
  /* dup2 leaves the new descriptors without close-on-exec: the program and its children keep them. */
  if (dup2(io, 0) < 0 || dup2(io, 1) < 0 || dup2(err, 2) < 0) return 125;
  close(io);
  close(err);
  execvp(argv[3], argv + 3);
  int failed = errno;
  char msg[512];
  int n = snprintf(msg, sizeof msg, "dh-init: cannot run %.300s: %s\n", argv[3], strerror(failed));
  if (n > 0) write_all(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
  return failed == ENOENT ? 127 : 126;
}

static int run_spec(void);

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "--connect") == 0) return run_connected(argc, argv);
  return run_spec();
}

static int run_spec(void) {
  /* Not dumpable: the command, same uid, cannot read the nonce out of /proc/1/mem. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  char header[32];
  size_t h = 0;
  for (;;) {
    if (h == sizeof header - 1) fail_malformed("header too long");
    if (read_full(0, &header[h], 1) < 0) _exit(125); /* the host went away before sending */
    if (header[h] == '\n') break;
    h++;
  }
  header[h] = '\0';
  if (strncmp(header, "DH1 ", 4) != 0) fail_malformed("bad header");
  unsigned long len = 0;
  const char *digits = header + 4;
  if (!*digits) fail_malformed("no length");
  for (const char *d = digits; *d; d++) {
    if (*d < '0' || *d > '9') fail_malformed("bad length");
    len = len * 10 + (unsigned long)(*d - '0');
    if (len > MAX_SPEC) fail_malformed("too long");
  }
  if (len == 0) fail_malformed("empty");
  char *spec = malloc(len + 1);
  if (!spec) fail_malformed("out of memory");
  if (read_full(0, spec, len) < 0) _exit(125);
  spec[len] = '\0';
  if (spec[len - 1] != '\0') fail_malformed("last record not terminated");

  static char *argv[MAX_ARGS + 1];
  static char *envs[MAX_ENV];
  size_t argc = 0, envc = 0;
  char *cwd = NULL;
  const char *got_nonce = NULL;
  for (char *rec = spec; rec < spec + len; rec += strlen(rec) + 1) {
    char tag = rec[0];
    char *value = rec + (tag ? 1 : 0);
    switch (tag) {
      case 'N':
        if (got_nonce || !is_hex(value, 16, 64)) fail_malformed("bad nonce");
        got_nonce = value;
        break;
      case 'C':
        if (cwd || value[0] != '/') fail_malformed("bad working directory");
        cwd = value;
        break;
      case 'A':
        if (argc == MAX_ARGS) fail_malformed("too many arguments");
        argv[argc++] = value;
        break;
      case 'E':
        if (envc == MAX_ENV || value[0] == '=' || !strchr(value, '=')) fail_malformed("bad environment entry");
        envs[envc++] = value;
        break;
      default:
        fail_malformed("unknown record");
    }
  }
  if (!got_nonce || !cwd || argc == 0 || argv[0][0] == '\0') fail_malformed("missing record");
  argv[argc] = NULL;
  nonce = got_nonce;

  for (size_t i = 0; i < envc; i++) {
    char *eq = strchr(envs[i], '=');
    *eq = '\0';
    if (setenv(envs[i], eq + 1, 1) != 0) fail_malformed("bad environment entry");
  }

  if (chdir(cwd) != 0 && errno == ENOENT) {
    char *copy = strdup(cwd);
    if (copy) make_dirs(copy);
    free(copy);
  }
  if (chdir(cwd) != 0) {
    char msg[512];
    snprintf(msg, sizeof msg, "cannot use the working directory %.300s: %s", cwd, strerror(errno));
    report("error:", msg);
    _exit(126);
  }

  /* exec's outcome comes back on a close-on-exec pipe: EOF means the command is running. */
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    report("error:", "cannot start the command: no pipe");
    _exit(126);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward;
  int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaction(forwarded[i], &sa, NULL);

  child = fork();
  if (child < 0) {
    report("error:", "cannot start the command: fork failed");
    _exit(126);
  }
  if (child == 0) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaction(forwarded[i], &dfl, NULL);
    close(pipefd[0]);
    /* The run spec came on stdin; the command reads nothing from it. */
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0 && null != 0) {
      dup2(null, 0);
      close(null);
    }
    execvp(argv[0], argv);
    int err = errno;
    write_all(pipefd[1], (const char *)&err, sizeof err);
    _exit(err == ENOENT ? 127 : 126);
  }
  close(pipefd[1]);
  int err = 0;
  ssize_t r;
  do r = read(pipefd[0], &err, sizeof err);
  while (r < 0 && errno == EINTR);
  close(pipefd[0]);
  if (r == (ssize_t)sizeof err) {
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
    }
    char msg[512];
    snprintf(msg, sizeof msg, "cannot run %.300s: %s", argv[0], strerror(err));
    report("error:", msg);
    _exit(err == ENOENT ? 127 : 126);
  }

  int status = 0;
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p == child) {
      status = st;
      break;
    }
    if (p < 0 && errno != EINTR) break;
  }
  /* What the command left running goes with it (only as PID 1: elsewhere -1 means everyone). */
  if (getpid() == 1) {
    kill(-1, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {
    }
  }
  report("done", "");
  struct pollfd in = {.fd = 0, .events = POLLIN};
  while (poll(&in, 1, 5000) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}
