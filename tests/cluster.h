/*
** cluster.h - real etcd clusters for the C tests: start a 1-member or a
** 3-member cluster on 127.0.0.1, kill, stop (SIGSTOP), resume and restart
** its members, find its leader.  The shell tests have the same in
** tests/etcd.sh.
**
** USAGE
**     #include "harness.h"
**     #include "cluster.h"       (after harness.h; links ext/etcd.c)
**     fkv_cluster c;
**     if (clusterStart(&c, "one", 1, NULL) != 0) { SKIP(...); }
**     ... c.zEndpoints ("http://127.0.0.1:P1,http://127.0.0.1:P2,...") ...
**     clusterKill(&c, clusterLeader(&c), SIGKILL);
**     clusterStop(&c);            (also done at exit, for every cluster)
**
** INVARIANTS
**   - Every member is a child of the test process, started by fork/exec
**     (etcd on PATH) with --heartbeat-interval 50 --election-timeout 500,
**     its own data directory under the test's scratch directory
**     (harness_tmpdir(), removed at exit) and free ports on 127.0.0.1
**     (bound to port 0 by the kernel, then released: a port taken in
**     between fails that start, which is retried with new ports).  Its log
**     is <data dir>.log.
**   - Members are stopped by their process id: clusterStop() (SIGCONT then
**     SIGKILL, then waitpid) for one cluster; an atexit handler, registered
**     after the scratch directory's, for every cluster still running; and,
**     if the test process dies without running atexit handlers (a crash, a
**     sanitizer's abort, SIGKILL), the kernel: each member is started with
**     PR_SET_PDEATHSIG = SIGKILL.
**   - clusterStart() waits (at most 20 s) until every member answers
**     /v3/maintenance/status and knows a leader.
**   - TLS: extra flags --cert-file, --key-file (and --trusted-ca-file with
**     --client-cert-auth) make the client URLs https:// (the peers stay
**     plain http on 127.0.0.1).
**   - Not thread-safe: the test's main thread (or one thread) calls these.
*/
#ifndef FLAXKV_CLUSTER_H
#define FLAXKV_CLUSTER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "etcd.h"
#include "util.h"

#define CLUSTER_MAX 5

typedef struct fkv_member fkv_member;
struct fkv_member {
  pid_t pid;    /* 0: not running */
  int bStopped; /* SIGSTOPped */
  int clientPort, peerPort;
  char zName[32];
  char zDir[512];
  char zUrl[64]; /* its client URL */
};

typedef struct fkv_cluster fkv_cluster;
struct fkv_cluster {
  int n;
  fkv_member a[CLUSTER_MAX];
  char zName[32];
  char zEndpoints[CLUSTER_MAX * 64]; /* the client URLs, comma-separated */
  char zInitial[CLUSTER_MAX * 96];   /* --initial-cluster */
  char azExtra[16][256];             /* extra etcd flags (copies) */
  /* TLS: from the extra flags --cert-file, --key-file, --trusted-ca-file
  ** (then the client URLs are https://, and the probes present the
  ** member's own certificate, which must allow client authentication). */
  const char *zCert, *zKey, *zCa;
  int nExtra;
  fkv_cluster *pNext;
};

static fkv_cluster *cluster_pAll = 0; /* clusters not yet stopped */
static int cluster_bAtExit = 0;

static __attribute__((unused)) void clusterSleepMs(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* A free TCP port on 127.0.0.1 (0 on failure). */
static int clusterFreePort(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof(a);
  int port = 0;
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &n) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

/* Start member i (its data directory kept if it exists: a restart joins
** as "existing"). */
static int clusterSpawn(fkv_cluster *c, int i, int bExisting) {
  fkv_member *m = &c->a[i];
  char zClient[64], zPeer[64], zLog[600];
  snprintf(zClient, sizeof zClient, "%s", m->zUrl);
  snprintf(zPeer, sizeof zPeer, "http://127.0.0.1:%d", m->peerPort);
  snprintf(zLog, sizeof zLog, "%s.log", m->zDir);
  const char *azArg[48];
  int nArg = 0;
  azArg[nArg++] = "etcd";
  azArg[nArg++] = "--name";
  azArg[nArg++] = m->zName;
  azArg[nArg++] = "--data-dir";
  azArg[nArg++] = m->zDir;
  azArg[nArg++] = "--listen-client-urls";
  azArg[nArg++] = zClient;
  azArg[nArg++] = "--advertise-client-urls";
  azArg[nArg++] = zClient;
  azArg[nArg++] = "--listen-peer-urls";
  azArg[nArg++] = zPeer;
  azArg[nArg++] = "--initial-advertise-peer-urls";
  azArg[nArg++] = zPeer;
  azArg[nArg++] = "--initial-cluster";
  azArg[nArg++] = c->zInitial;
  azArg[nArg++] = "--initial-cluster-token";
  azArg[nArg++] = c->zName;
  azArg[nArg++] = "--initial-cluster-state";
  azArg[nArg++] = bExisting ? "existing" : "new";
  azArg[nArg++] = "--heartbeat-interval";
  azArg[nArg++] = "50";
  azArg[nArg++] = "--election-timeout";
  azArg[nArg++] = "500";
  azArg[nArg++] = "--log-outputs";
  azArg[nArg++] = "stderr";
  for (int k = 0; k < c->nExtra; k++) azArg[nArg++] = c->azExtra[k];
  azArg[nArg] = 0;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(zLog, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int fdNull = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (fdNull >= 0) dup2(fdNull, 0);
    execvp("etcd", (char *const *)azArg);
    _exit(127);
  }
  m->pid = pid;
  m->bStopped = 0;
  return 0;
}

/* Stop member i by its pid (SIGCONT first, for a stopped one), and reap it. */
static __attribute__((unused)) void clusterKill(fkv_cluster *c, int i, int sig) {
  fkv_member *m = &c->a[i];
  if (m->pid <= 0) return;
  if (sig == SIGSTOP || sig == SIGCONT) {
    kill(m->pid, sig);
    m->bStopped = sig == SIGSTOP;
    return;
  }
  if (m->bStopped) kill(m->pid, SIGCONT);
  kill(m->pid, sig);
  if (sig != SIGKILL) {
    /* A graceful stop: at most 5 s, then SIGKILL. */
    for (int k = 0; k < 100; k++) {
      if (waitpid(m->pid, 0, WNOHANG) == m->pid) {
        m->pid = 0;
        return;
      }
      clusterSleepMs(50);
    }
    kill(m->pid, SIGKILL);
  }
  while (waitpid(m->pid, 0, 0) < 0 && errno == EINTR) {
  }
  m->pid = 0;
  m->bStopped = 0;
}

/* Stop every member of c, by pid; the data directories stay (the scratch
** directory goes at exit).  c may be started again with clusterStart. */
static __attribute__((unused)) void clusterStop(fkv_cluster *c) {
  for (int i = 0; i < c->n; i++) clusterKill(c, i, SIGKILL);
  for (fkv_cluster **pp = &cluster_pAll; *pp; pp = &(*pp)->pNext) {
    if (*pp == c) {
      *pp = c->pNext;
      break;
    }
  }
}

static void clusterAtExit(void) {
  while (cluster_pAll) clusterStop(cluster_pAll);
}

/* Does member i answer with a leader (within ms)?  Its id and its
** leader's into *piMember, *piLeader (may be NULL). */
static int clusterProbe(fkv_cluster *c, int i, int ms, uint64_t *piMember, uint64_t *piLeader) {
  fkv_etcd_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.zEndpoints = c->a[i].zUrl;
  cfg.zCert = c->zCert;
  cfg.zKey = c->zKey;
  cfg.zCaCert = c->zCa;
  cfg.connectMs = ms;
  cfg.requestMs = ms;
  cfg.failoverMs = 1;
  fkv_etcd *p = 0;
  fkv_etcd_status st;
  int ok = fkvEtcdOpen(&cfg, &p, 0) == SQLITE_OK && fkvEtcdStatus(p, &st, 0) == SQLITE_OK &&
           st.iLeader != 0;
  fkvEtcdClose(p);
  if (ok && piMember) *piMember = st.iMember;
  if (ok && piLeader) *piLeader = st.iLeader;
  return ok;
}

/* Wait (at most ms) until every running, not stopped member answers and
** knows a leader.  Returns 0, or -1 on timeout. */
static __attribute__((unused)) int clusterWaitHealthy(fkv_cluster *c, int ms) {
  int64_t tEnd = fkvTimeNowMs() + ms;
  for (;;) {
    int nOk = 0, nWant = 0;
    for (int i = 0; i < c->n; i++) {
      if (c->a[i].pid <= 0 || c->a[i].bStopped) continue;
      nWant++;
      nOk += clusterProbe(c, i, 300, 0, 0);
    }
    if (nOk == nWant) return 0;
    if (fkvTimeNowMs() >= tEnd) return -1;
    clusterSleepMs(50);
  }
}

/* The index of the leader (asked of the running members), or -1. */
static __attribute__((unused)) int clusterLeader(fkv_cluster *c) {
  uint64_t aId[CLUSTER_MAX] = {0}, iLeader = 0;
  for (int i = 0; i < c->n; i++) {
    if (c->a[i].pid <= 0 || c->a[i].bStopped) continue;
    uint64_t iL = 0;
    if (clusterProbe(c, i, 500, &aId[i], &iL) && !iLeader) iLeader = iL;
  }
  for (int i = 0; i < c->n; i++) {
    if (aId[i] && aId[i] == iLeader) return i;
  }
  return -1;
}

/* Is etcd on PATH (an executable file in one of its directories)? */
static __attribute__((unused)) int clusterInstalled(void) {
  const char *zPath = getenv("PATH");
  char zDir[4096];
  while (zPath && *zPath) {
    size_t n = strcspn(zPath, ":");
    snprintf(zDir, sizeof zDir, "%.*s/etcd", (int)n, zPath);
    if (n && access(zDir, X_OK) == 0) return 1;
    zPath += n + (zPath[n] == ':');
  }
  return 0;
}

/* A cluster that did not start: skipped where etcd is not installed, a
** failure where it is (a test that cannot run must not pass). */
#define CLUSTER_NOT_STARTED(zWhat)                                            \
  do {                                                                        \
    if (clusterInstalled()) CHECK(0, "%s: the etcd cluster did not start", zWhat); \
    else SKIP("%s: etcd is not installed", zWhat);                            \
  } while (0)

/*
** Start a cluster of n members (1..CLUSTER_MAX) named zName (unique in the
** test), each with the extra etcd flags azExtra (NULL-terminated, may be
** NULL), and wait until it is healthy.  Returns 0, or -1 (etcd is not
** installed, or the cluster did not become healthy: its members' logs are
** printed).
*/
static __attribute__((unused)) int clusterStart(fkv_cluster *c, const char *zName, int n,
                                                const char *const *azExtra) {
  memset(c, 0, sizeof *c);
  snprintf(c->zName, sizeof c->zName, "%s", zName);
  c->n = n;
  while (azExtra && azExtra[c->nExtra] && c->nExtra < 16) {
    snprintf(c->azExtra[c->nExtra], sizeof c->azExtra[0], "%s", azExtra[c->nExtra]);
    c->nExtra++;
  }
  for (int k = 0; k + 1 < c->nExtra; k++) {
    if (strcmp(c->azExtra[k], "--cert-file") == 0) c->zCert = c->azExtra[k + 1];
    if (strcmp(c->azExtra[k], "--key-file") == 0) c->zKey = c->azExtra[k + 1];
    if (strcmp(c->azExtra[k], "--trusted-ca-file") == 0) c->zCa = c->azExtra[k + 1];
  }
  for (int iTry = 0; iTry < 3; iTry++) {
    char *zE = c->zEndpoints, *zI = c->zInitial;
    size_t nE = sizeof c->zEndpoints, nI = sizeof c->zInitial;
    for (int i = 0; i < n; i++) {
      fkv_member *m = &c->a[i];
      m->clientPort = clusterFreePort();
      m->peerPort = clusterFreePort();
      snprintf(m->zName, sizeof m->zName, "%s%d", zName, i);
      snprintf(m->zDir, sizeof m->zDir, "%s/etcd-%s-%d-%d", harness_tmpdir(), zName, i, iTry);
      snprintf(m->zUrl, sizeof m->zUrl, "%s://127.0.0.1:%d", c->zCert ? "https" : "http",
               m->clientPort);
      int k = snprintf(zE, nE, "%s%s", i ? "," : "", m->zUrl);
      zE += k;
      nE -= (size_t)k;
      k = snprintf(zI, nI, "%s%s=http://127.0.0.1:%d", i ? "," : "", m->zName, m->peerPort);
      zI += k;
      nI -= (size_t)k;
    }
    if (!cluster_bAtExit) {
      cluster_bAtExit = 1;
      atexit(clusterAtExit); /* after harness_tmpdir's: runs before it */
    }
    c->pNext = cluster_pAll;
    cluster_pAll = c;
    int bSpawned = 1;
    for (int i = 0; i < n; i++) bSpawned &= clusterSpawn(c, i, 0) == 0;
    if (bSpawned && clusterWaitHealthy(c, 20000) == 0) return 0;
    int bGone = 0;
    for (int i = 0; i < n; i++) {
      int st;
      if (c->a[i].pid > 0 && waitpid(c->a[i].pid, &st, WNOHANG) == c->a[i].pid) {
        c->a[i].pid = 0;
        bGone |= WIFEXITED(st) && WEXITSTATUS(st) == 127;
      }
    }
    clusterStop(c);
    if (bGone) return -1; /* no etcd to run */
    for (int i = 0; i < n && iTry == 2; i++) {
      char zCmd[700];
      snprintf(zCmd, sizeof zCmd, "tail -n 20 '%s.log' >&2", c->a[i].zDir);
      if (system(zCmd) != 0) fprintf(stderr, "(no log for %s)\n", c->a[i].zName);
    }
  }
  return -1;
}

/* Start member i again on its data directory (after clusterKill), and wait
** until the cluster is healthy.  Returns 0 or -1. */
static __attribute__((unused)) int clusterRestart(fkv_cluster *c, int i) {
  if (c->a[i].pid > 0) return 0;
  if (clusterSpawn(c, i, 1) != 0) return -1;
  return clusterWaitHealthy(c, 20000);
}

/* The endpoint URLs of the members in order starting with member i (so a
** client prefers member i), into z (static: copy it if kept). */
static __attribute__((unused)) const char *clusterEndpointsFrom(fkv_cluster *c, int i) {
  static char z[CLUSTER_MAX * 64];
  size_t n = 0;
  z[0] = 0;
  for (int k = 0; k < c->n; k++) {
    n += (size_t)snprintf(z + n, sizeof z - n, "%s%s", k ? "," : "", c->a[(i + k) % c->n].zUrl);
  }
  return z;
}

#endif /* FLAXKV_CLUSTER_H */
