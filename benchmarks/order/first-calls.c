// first-calls: runs a program under ptrace with a one-shot breakpoint on the entry of every function it is given,
// and writes the functions in the order they were first called.
//
//   first-calls SYMBOLS OUT -- PROGRAM [ARGS...]
//
// SYMBOLS holds "ADDRESS NAME" lines (hex addresses relative to the program's load base, as `nm` prints them for a
// position-independent executable). The breakpoints go in when the program has been exec'd, before its first
// instruction; each one is removed the first time any thread reaches it, so a function costs one trap however often
// it runs. Every thread is traced. Signals other than our traps go through to the program unchanged (the .NET
// runtime uses them to suspend threads for the GC). SIGTERM or SIGINT to first-calls is passed on to the program as
// SIGTERM, so a harness that stops it stops the program; OUT is written when the program has exited. Linux x86-64
// only; needs ptrace permission over the program (root). FIRST_CALLS_DEBUG=1 prints every stop.
//
// SIGUSR1 to first-calls starts a second phase: it writes a line "--" to OUT's list and puts every breakpoint back,
// so the functions after that line are those the program called again (or for the first time) from then on. The
// profile sends it once the program has started, to tell its steady state from its start-up.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

struct function {
    uint64_t address; // absolute, once the load base is known
    char *name;
    unsigned char original;
    int armed;
};

static struct function *functions;
static size_t function_count;
static char **hits;
static size_t hit_count;
static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t phase_requested;
static char phase_marker[] = "--";

static int by_address(const void *a, const void *b) {
    uint64_t x = ((const struct function *)a)->address, y = ((const struct function *)b)->address;
    return x < y ? -1 : x > y;
}

static struct function *find(uint64_t address) {
    size_t lo = 0, hi = function_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (functions[mid].address == address) {
            while (mid > 0 && functions[mid - 1].address == address) mid--; // the armed one of several names
            return &functions[mid];
        }
        if (functions[mid].address < address) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

static void read_symbols(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    size_t capacity = 1 << 16;
    functions = malloc(capacity * sizeof *functions);
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        char *name = strchr(line, ' ');
        if (!name) continue;
        *name++ = 0;
        name[strcspn(name, "\n")] = 0;
        if (function_count == capacity) functions = realloc(functions, (capacity *= 2) * sizeof *functions);
        functions[function_count].address = strtoull(line, NULL, 16);
        functions[function_count].name = strdup(name);
        functions[function_count].armed = 0;
        function_count++;
    }
    fclose(f);
    qsort(functions, function_count, sizeof *functions, by_address);
    hits = malloc(2 * (function_count + 1) * sizeof *hits); // two phases and their marker
}

// The load base of the program: the start of its first mapping, which maps file offset 0.
static uint64_t load_base(pid_t pid, const char *program) {
    char path[64], line[4096], real[4096];
    if (!realpath(program, real)) { perror(program); exit(2); }
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    uint64_t base = 0;
    while (fgets(line, sizeof line, f)) {
        uint64_t start, offset;
        char file[4096] = "";
        if (sscanf(line, "%lx-%*x %*s %lx %*s %*s %4095s", &start, &offset, file) >= 2 && offset == 0 && strcmp(file, real) == 0) {
            base = start;
            break;
        }
    }
    fclose(f);
    if (!base) { fprintf(stderr, "first-calls: %s is not mapped in %d\n", real, pid); exit(2); }
    return base;
}

// The program's memory, where breakpoints are written (as a debugger does, through /proc/PID/mem).
static int open_memory(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    int mem = open(path, O_RDWR);
    if (mem < 0) { perror(path); exit(2); }
    return mem;
}

// Two symbols can name one address (folded identical bodies): it is armed once, under the first name.
static int is_alias(size_t i) { return i > 0 && functions[i].address == functions[i - 1].address; }

static int set_trap(int mem, struct function *fn) {
    unsigned char trap = 0xCC;
    if (pwrite(mem, &trap, 1, (off_t)fn->address) != 1) return 0;
    fn->armed = 1;
    return 1;
}

static void arm(pid_t pid, uint64_t base) {
    int mem = open_memory(pid);
    size_t armed = 0;
    for (size_t i = 0; i < function_count; i++) {
        functions[i].address += base;
        if (is_alias(i)) continue;
        if (pread(mem, &functions[i].original, 1, (off_t)functions[i].address) != 1) continue;
        armed += set_trap(mem, &functions[i]);
    }
    close(mem);
    fprintf(stderr, "first-calls: %zu of %zu functions armed\n", armed, function_count);
}

// The next phase: every function that was called gets its breakpoint back.
static void rearm(pid_t pid) {
    int mem = open_memory(pid);
    size_t rearmed = 0;
    for (size_t i = 0; i < function_count; i++) {
        if (functions[i].armed || is_alias(i)) continue;
        unsigned char current;
        // Only a function whose first byte is still its own (armed once, then called and restored).
        if (pread(mem, &current, 1, (off_t)functions[i].address) != 1 || current != functions[i].original) continue;
        rearmed += set_trap(mem, &functions[i]);
    }
    close(mem);
    hits[hit_count++] = phase_marker;
    fprintf(stderr, "first-calls: next phase, %zu functions armed again\n", rearmed);
}

static void disarm(pid_t pid, struct function *fn) {
    int mem = open_memory(pid);
    if (pwrite(mem, &fn->original, 1, (off_t)fn->address) != 1) { perror("first-calls: restore"); exit(2); }
    close(mem);
    fn->armed = 0;
    hits[hit_count++] = fn->name;
}

static void write_hits(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(2); }
    for (size_t i = 0; i < hit_count; i++) fprintf(f, "%s\n", hits[i]);
    fclose(f);
    fprintf(stderr, "first-calls: %zu functions called, written to %s\n", hit_count, path);
}

static void on_stop_request(int signal) { (void)signal; stop_requested = 1; }

static void on_phase_request(int signal) { (void)signal; phase_requested = 1; }

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: first-calls SYMBOLS OUT -- PROGRAM [ARGS...]\n");
        return 2;
    }
    read_symbols(argv[1]);
    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        raise(SIGSTOP);
        execv(argv[4], &argv[4]);
        perror(argv[4]);
        _exit(127);
    }
    struct sigaction stop = { .sa_handler = on_stop_request };
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGINT, &stop, NULL);
    struct sigaction phase = { .sa_handler = on_phase_request };
    sigaction(SIGUSR1, &phase, NULL);
    int phases = 1;

    int status;
    waitpid(child, &status, 0); // the SIGSTOP before exec
    ptrace(PTRACE_SETOPTIONS, child, NULL, PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL);
    ptrace(PTRACE_CONT, child, NULL, NULL);
    int running = 1, exec_seen = 0, debug = getenv("FIRST_CALLS_DEBUG") != NULL;
    while (running) {
        if (stop_requested) {
            kill(child, SIGTERM); // the program stops as it would without us; its exit ends the trace
            stop_requested = 0;
        }
        if (phase_requested) {
            phase_requested = 0;
            if (exec_seen && phases++ == 1) rearm(child);
        }
        pid_t thread = waitpid(-1, &status, __WALL);
        if (thread < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (thread == child) running = 0;
            continue;
        }
        if (!WIFSTOPPED(status)) continue;
        int signal = WSTOPSIG(status);
        int event = status >> 16;
        if (debug) {
            struct user_regs_struct r;
            ptrace(PTRACE_GETREGS, thread, NULL, &r);
            fprintf(stderr, "first-calls: thread %d stopped, signal %d event %d at %llx\n", thread, signal, event, r.rip);
        }
        int deliver = 0;
        if (signal == SIGTRAP && event == PTRACE_EVENT_EXEC && !exec_seen) {
            exec_seen = 1;
            arm(child, load_base(child, argv[4]));
        } else if (signal == SIGTRAP && event != 0) {
            // A clone event: the new thread is traced and starts with a SIGSTOP of its own.
        } else if (signal == SIGTRAP) {
            struct user_regs_struct regs;
            ptrace(PTRACE_GETREGS, thread, NULL, &regs);
            struct function *fn = find(regs.rip - 1);
            if (fn) {
                // Another thread may have hit the same trap before it was removed: it only needs rewinding.
                if (fn->armed) disarm(child, fn);
                regs.rip -= 1;
                ptrace(PTRACE_SETREGS, thread, NULL, &regs);
            } else {
                deliver = signal; // not ours
            }
        } else if (signal == SIGSTOP && event == 0) {
            // A new thread's first stop, or a real SIGSTOP: continue either way.
        } else {
            deliver = signal;
        }
        ptrace(PTRACE_CONT, thread, NULL, (void *)(intptr_t)deliver);
    }
    write_hits(argv[2]);
    return 0;
}
