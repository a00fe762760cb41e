// SIGPROF sampling of the interrupted instruction pointer, for machines without perf
// (benchmarks/sample_pcs.py builds and loads it). CPU time of every thread drives ITIMER_PROF, so
// OpenMP workers are sampled too.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <ucontext.h>

#define CAPACITY (1 << 22)
static uint64_t samples[CAPACITY];
static volatile int count;

static void on_sigprof(int sig, siginfo_t* info, void* context) {
  (void)sig;
  (void)info;
  int i = __sync_fetch_and_add(&count, 1);
  if (i < CAPACITY) samples[i] = ((ucontext_t*)context)->uc_mcontext.gregs[REG_RIP];
}

void sampler_start(int period_us) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_sigprof;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGPROF, &action, 0);
  struct itimerval timer = {{0, period_us}, {0, period_us}};
  setitimer(ITIMER_PROF, &timer, 0);
}

// Stops sampling and writes one hexadecimal address per line; returns the number written.
int sampler_stop(const char* path) {
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_PROF, &off, 0);
  FILE* out = fopen(path, "w");
  if (!out) return -1;
  int n = count < CAPACITY ? count : CAPACITY;
  for (int i = 0; i < n; i++) fprintf(out, "%lx\n", (unsigned long)samples[i]);
  fclose(out);
  return n;
}
