/*
 * milter/main.c - outpolicyd: options, start-up, privilege drop, signals,
 * reload and shutdown around libmilter's smfi_main().
 *
 * Signals: libmilter's own signal thread stops the milter on SIGHUP, so
 * the main thread keeps HUP/USR1/TERM/INT unblocked with handlers that
 * write to a self-pipe.  Linux delivers a process-directed signal to the
 * main thread whenever it can take it, so the main thread, not libmilter,
 * sees them: HUP reloads, USR1 reopens the events file, TERM/INT stop
 * accepting and wait for sessions in flight.  smfi_main() runs in a
 * thread of its own.
 * Licence: BSD-2-Clause.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pthread.h>
#include <malloc.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "mf.h"

#ifndef DEFAULT_CONF
#define DEFAULT_CONF "/etc/outpolicy/outpolicy.conf"
#endif

static struct {
    const char *conffile;
    bool foreground;
    bool check_only;
} opt = { DEFAULT_CONF, false, false };

static int sig_pipe[2] = { -1, -1 };
static int trim_ticks; /* seconds left to give freed configs back */
static uid_t run_uid = (uid_t)-1;
static gid_t run_gid = (gid_t)-1;
static char *pidfile_path;
static char *socket_file; /* unix socket we created: removed on a fatal */

/* mf_fatal - log and exit with a sysexits code */
static void MF_PRINTF(2, 3)
mf_fatal(int code, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    mf_log(LOG_ERR, NULL, "fatal: %s", line);
    if (!opt.foreground && !opt.check_only)
        fprintf(stderr, "outpolicyd: %s\n", line);
    if (socket_file != NULL)
        unlink(socket_file);
    mf_tlsmap_abandon();
    if (pidfile_path != NULL)
        unlink(pidfile_path);
    exit(code);
}

static void
usage(FILE *out)
{
    fprintf(out,
        "usage: outpolicyd [-c FILE] [-f] [-n] [-V] [-h]\n"
        "  -c FILE  configuration file (default %s)\n"
        "  -f       stay in the foreground, log to stderr\n"
        "  -n       check the configuration and exit (0 = OK, 1 = not)\n"
        "  -V       print the version and exit\n"
        "  -h       this help\n", DEFAULT_CONF);
}

/* mf_parse_args - command line into opt */
static void
mf_parse_args(int argc, char **argv)
{
    int ch;

    while ((ch = getopt(argc, argv, "c:fnVh")) != -1) {
        switch (ch) {
        case 'c':
            opt.conffile = optarg;
            break;
        case 'f':
            opt.foreground = true;
            break;
        case 'n':
            opt.check_only = true;
            break;
        case 'V': {
            unsigned int maj = 0, min = 0, pl = 0;
            smfi_version(&maj, &min, &pl);
            printf("outpolicyd %s (libmilter %u.%u.%u)\n", PACKAGE_VERSION,
                maj, min, pl);
            exit(0);
        }
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(EX_USAGE);
        }
    }
    if (optind != argc) {
        usage(stderr);
        exit(EX_USAGE);
    }
}

/* resolve_user - run_uid/run_gid from daemon.user/daemon.group */
static void
resolve_user(const struct pol_daemon_settings *d)
{
    struct passwd *pw;
    struct group *gr;

    if (getuid() != 0) {
        if (*d->user != '\0')
            mf_log(LOG_INFO, NULL, "not started as root: daemon.user "
                "\"%s\" ignored", d->user);
        return;
    }
    if (*d->user == '\0')
        mf_fatal(EX_CONFIG, "refusing to run as root: set daemon.user in "
            "%s (e.g. user = \"outpolicy\";)", opt.conffile);
    if ((pw = getpwnam(d->user)) == NULL)
        mf_fatal(EX_NOUSER, "daemon.user: no such user \"%s\"", d->user);
    if (pw->pw_uid == 0)
        mf_fatal(EX_CONFIG, "daemon.user \"%s\" is root: use an "
            "unprivileged user", d->user);
    run_uid = pw->pw_uid;
    run_gid = pw->pw_gid;
    if (*d->group != '\0') {
        if ((gr = getgrnam(d->group)) == NULL)
            mf_fatal(EX_NOUSER, "daemon.group: no such group \"%s\"",
                d->group);
        run_gid = gr->gr_gid;
    }
}

/* key_owner - warn when a key cannot be re-read after the privilege drop:
 * keys are read as root at start, but SIGHUP reloads as daemon.user */
static void
key_owner(void *arg, const char *file)
{
    const struct pol_daemon_settings *d = arg;
    struct stat st;

    if (run_uid == (uid_t)-1 || stat(file, &st) != 0 || st.st_uid == run_uid)
        return;
    mf_log(LOG_WARNING, NULL, "key file %s is owned by uid %ld, not "
        "daemon.user \"%s\": it is read now, but a reload (SIGHUP) will "
        "be refused; fix: chown %s %s", file, (long)st.st_uid, d->user,
        d->user, file);
}

/* socket_path - the file of a unix: / local: socket, or NULL */
static const char *
socket_path(const char *spec)
{
    if (strncmp(spec, "unix:", 5) == 0)
        return spec + 5;
    if (strncmp(spec, "local:", 6) == 0)
        return spec + 6;
    return NULL;
}

/* refuse_live_socket - another daemon answers on path: do not steal it */
static void
refuse_live_socket(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        mf_fatal(EX_CONFIG, "daemon.socket: path too long: %s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(fd);
        mf_fatal(EX_UNAVAILABLE, "another process is listening on %s "
            "(is outpolicyd already running?)", path);
    }
    close(fd);
}

/* nodelay_listener - TCP_NODELAY on libmilter's inet listening socket.
 * libmilter does not expose it, so it is found among our descriptors by
 * its local port; Linux gives accepted sockets the listener's
 * TCP_NODELAY.  Without it a milter reply waits for the MTA's delayed
 * ACK (Nagle): 40-90 ms per message on one SMTP session. */
static void
nodelay_listener(const char *spec)
{
    const char *colon = strchr(spec, ':');
    int port = colon ? atoi(colon + 1) : 0, one = 1;

    for (int fd = 0; fd < 1024 && port > 0; fd++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int acc = 0;
        socklen_t al = sizeof(acc);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) != 0 || !acc
            || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
            continue;
        if ((ss.ss_family == AF_INET && ntohs(((struct sockaddr_in *)&ss)
                    ->sin_port) == port)
            || (ss.ss_family == AF_INET6 && ntohs(((struct sockaddr_in6 *)
                    &ss)->sin6_port) == port)) {
            if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
                != 0)
                mf_log_errno(LOG_WARNING, "TCP_NODELAY on %s", spec);
            return;
        }
    }
    mf_log(LOG_WARNING, NULL, "cannot find the listening socket of %s to "
        "set TCP_NODELAY", spec);
}

/* setup_socket - register with libmilter, bind, set mode and group */
static void
setup_socket(const struct pol_daemon_settings *d)
{
    const char *path = socket_path(d->socket);
    gid_t gid = run_gid;
    mode_t old;
    int r;

    if (path != NULL)
        refuse_live_socket(path);
    mf_set_noreply(path != NULL); /* not over TCP: see callbacks.c */
    if (smfi_register(mf_desc) != MI_SUCCESS)
        mf_fatal(EX_SOFTWARE, "smfi_register failed");
    /* a peer that stalls mid-command holds a thread this long (libmilter's
     * default is 7210 s); it must stay above Postfix's smtpd_timeout */
    smfi_settimeout(d->milter_timeout);
    if (smfi_setconn((char *)d->socket) != MI_SUCCESS)
        mf_fatal(EX_CONFIG, "daemon.socket: libmilter refuses \"%s\"",
            d->socket);
    old = umask(0177);
    r = smfi_opensocket(true);
    umask(old);
    if (r != MI_SUCCESS)
        mf_fatal(EX_OSERR, "cannot listen on %s (in use, or directory "
            "missing or not writable?)", d->socket);
    if (path == NULL) {
        nodelay_listener(d->socket);
        return;
    }
    socket_file = strdup(path);
    if (*d->socket_group != '\0') {
        struct group *gr = getgrnam(d->socket_group);
        if (gr == NULL)
            mf_fatal(EX_NOUSER, "daemon.socket_group: no such group \"%s\"",
                d->socket_group);
        gid = gr->gr_gid;
    }
    if (chmod(path, (mode_t)d->socket_mode) != 0)
        mf_fatal(EX_OSERR, "chmod %s: %s", path, strerror(errno));
    if ((run_uid != (uid_t)-1 || gid != (gid_t)-1)
        && chown(path, run_uid, gid) != 0)
        mf_fatal(EX_OSERR, "chown %s to group %s: %s (start as root, or "
            "set daemon.socket_group to a group this user is in)", path,
            d->socket_group, strerror(errno));
}

/* setup_tlsmap - bind the TLS policy socketmap, if configured */
static void
setup_tlsmap(const struct pol_config *cfg,
    const struct pol_daemon_settings *d)
{
    unsigned mode;
    const char *spec = pol_config_tlsmap_socket(cfg, &mode);
    char why[256];

    if (mf_tlsmap_open(spec, mode, d->socket_group, run_uid, run_gid, why,
            sizeof(why)) != 0)
        mf_fatal(EX_OSERR, "tls_policy.socket %s: %s", spec, why);
}

/* write_pidfile - our pid, owned by the run user so it can be removed */
static void
write_pidfile(const char *path)
{
    FILE *f;

    if (*path == '\0')
        return;
    if ((f = fopen(path, "w")) == NULL)
        mf_fatal(EX_CANTCREAT, "pidfile %s: %s", path, strerror(errno));
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0)
        mf_fatal(EX_CANTCREAT, "pidfile %s: %s", path, strerror(errno));
    if (run_uid != (uid_t)-1 && chown(path, run_uid, run_gid) != 0)
        mf_log_errno(LOG_WARNING, "chown %s", path);
    pidfile_path = strdup(path);
}

/* mf_drop_privileges - become run_uid/run_gid for good, and prove it */
static void
mf_drop_privileges(void)
{
    if (run_uid == (uid_t)-1)
        return;
    if (setgroups(1, &run_gid) != 0 || setresgid(run_gid, run_gid,
            run_gid) != 0 || setresuid(run_uid, run_uid, run_uid) != 0)
        mf_fatal(EX_OSERR, "cannot drop privileges: %s", strerror(errno));
    if (setuid(0) == 0 || seteuid(0) == 0)
        mf_fatal(EX_SOFTWARE, "privileges not dropped: setuid(0) works");
}

/* daemonize - detach from the terminal */
static void
daemonize(void)
{
    pid_t pid = fork();
    int fd;

    if (pid < 0)
        mf_fatal(EX_OSERR, "fork: %s", strerror(errno));
    if (pid > 0)
        _exit(0);
    setsid();
    if (chdir("/") != 0)
        mf_fatal(EX_OSERR, "chdir /: %s", strerror(errno));
    if ((fd = open("/dev/null", O_RDWR)) >= 0) {
        dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

static void
on_signal(int sig)
{
    int e = errno;
    unsigned char b = (unsigned char)sig;

    if (write(sig_pipe[1], &b, 1) < 0) {
        /* pipe full: a signal of the same kind is already queued */
    }
    errno = e;
}

/* install_signals - self-pipe handlers in the main thread */
static void
install_signals(void)
{
    static const int sigs[] = { SIGHUP, SIGUSR1, SIGTERM, SIGINT };
    struct sigaction sa;

    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        mf_fatal(EX_OSERR, "pipe: %s", strerror(errno));
    fcntl(sig_pipe[0], F_SETFL, 0); /* reads block, writes do not */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* reload - SIGHUP: a new config snapshot, or keep the old one */
static void
reload(void)
{
    struct pol_err err = { "" };
    struct pol_config *cfg = pol_config_load(opt.conffile, &mf_hooks, &err);
    const struct pol_daemon_settings *nd, *od;
    struct pol_config *old;

    if (cfg == NULL) {
        mf_log(LOG_ERR, NULL, "reload refused: %s; the previous "
            "configuration stays in force", err.msg);
        return;
    }
    if (pol_config_activate(cfg, &err) != POL_OK) {
        mf_log(LOG_ERR, NULL, "reload refused: %s; the previous "
            "configuration stays in force", err.msg);
        pol_config_unref(cfg);
        return;
    }
    old = mf_config_swap(cfg);
    pol_config_flush(old);
    nd = pol_config_daemon(cfg);
    od = pol_config_daemon(old);
    if (strcmp(nd->socket, od->socket) != 0
        || strcmp(nd->user, od->user) != 0
        || strcmp(nd->socket_group, od->socket_group) != 0)
        mf_log(LOG_WARNING, NULL, "reload: daemon.socket, daemon.user and "
            "daemon.socket_group take effect only after a restart");
    pol_config_unref(old);
    trim_ticks = 10;
    mf_log_set_level(nd->log_level);
    mf_log(LOG_NOTICE, NULL, "reloaded configuration %s mode=%s",
        opt.conffile, pol_config_mode(cfg) == POL_MODE_MONITOR
            ? "monitor" : "enforce");
}

/* reopen - SIGUSR1: reopen the events file after logrotate */
static void
reopen(void)
{
    struct pol_config *cfg = mf_config_get();
    struct pol_err err = { "" };

    if (pol_config_reopen(cfg, &err) != POL_OK)
        mf_log(LOG_ERR, NULL, "reopen: %s", err.msg);
    else
        mf_log(LOG_INFO, NULL, "reopened event file");
    pol_config_unref(cfg);
}

static int milter_rc;

static void *
milter_thread(void *arg)
{
    unsigned char b = 0; /* 0 = smfi_main returned */

    (void)arg;
    milter_rc = smfi_main();
    if (write(sig_pipe[1], &b, 1) < 0) {
        /* the main loop also polls for this thread's end */
    }
    return NULL;
}

/* wait_sessions - let sessions in flight finish, up to timeout seconds */
static void
wait_sessions(int timeout)
{
    struct timespec tick = { 0, 100 * 1000 * 1000 };
    time_t end = time(NULL) + timeout;

    while (mf_sessions_active() > 0 && time(NULL) < end)
        nanosleep(&tick, NULL);
    if (mf_sessions_active() > 0)
        mf_log(LOG_WARNING, NULL, "exiting with %d session(s) in flight "
            "after %d s; the MTA will retry them", mf_sessions_active(),
            timeout);
}

/* mf_run - serve until told to stop; returns the exit code */
static int
mf_run(int shutdown_timeout)
{
    pthread_t tid;
    unsigned char b;
    bool requested = false;

    if (pthread_create(&tid, NULL, milter_thread, NULL) != 0
        || mf_tlsmap_start() != 0)
        mf_fatal(EX_OSERR, "cannot start the milter or TLS policy thread");
    mf_log(LOG_NOTICE, NULL, "started, version %s", PACKAGE_VERSION);
    for (;;) {
        struct pollfd pfd = { .fd = sig_pipe[0], .events = POLLIN };
        if (poll(&pfd, 1, 1000) <= 0) { /* every second: buffered events */
            struct pol_config *cfg = mf_config_get();
            pol_config_flush(cfg);
            pol_config_unref(cfg);
            if (trim_ticks > 0) { /* the old config goes with its last
                                   * message: return its memory then */
                trim_ticks--;
                malloc_trim(0);
            }
            continue;
        }
        if (read(sig_pipe[0], &b, 1) != 1)
            continue;
        if (b == SIGHUP)
            reload();
        else if (b == SIGUSR1)
            reopen();
        else if (b == SIGTERM || b == SIGINT) {
            mf_log(LOG_NOTICE, NULL, "stopping on signal %d", b);
            requested = true;
            smfi_stop();
        } else if (b == 0)
            break;
    }
    pthread_join(tid, NULL);
    mf_tlsmap_stop();
    wait_sessions(shutdown_timeout);
    pol_config_unref(mf_config_swap(NULL)); /* flushes the events */
    if (pidfile_path != NULL && unlink(pidfile_path) != 0)
        mf_log_errno(LOG_INFO, "cannot remove pidfile %s", pidfile_path);
    if (!requested || milter_rc != MI_SUCCESS) {
        mf_log(LOG_ERR, NULL, "libmilter stopped unexpectedly");
        return EX_SOFTWARE;
    }
    mf_log(LOG_NOTICE, NULL, "stopped");
    return 0;
}

int
main(int argc, char **argv)
{
    struct pol_err err = { "" };
    struct pol_config *cfg;
    const struct pol_daemon_settings *d;
    char *abs_conf = NULL;

    mf_parse_args(argc, argv);
    mf_log_init("outpolicyd", LOG_MAIL, true);
    /* one thread per SMTP session: without a cap glibc grows an arena per
     * thread, and reloads under load leave memory spread across them */
    mallopt(M_ARENA_MAX, 2);
    /* daemonizing changes to /, and SIGHUP must find the same file */
    if (opt.conffile[0] != '/' && (abs_conf = realpath(opt.conffile, NULL))
        != NULL)
        opt.conffile = abs_conf;
    if ((cfg = pol_config_load(opt.conffile, &mf_hooks, &err)) == NULL) {
        if (opt.check_only) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        mf_log(LOG_ERR, NULL, "%s", err.msg);
        return EX_CONFIG;
    }
    if (opt.check_only) {
        printf("%s: configuration OK\n", opt.conffile);
        return 0;
    }
    d = pol_config_daemon(cfg);
    mf_log_init("outpolicyd", d->syslog_facility, opt.foreground);
    mf_log_set_level(d->log_level);
    resolve_user(d);
    pol_config_key_files(cfg, key_owner, (void *)d);
    setup_socket(d);
    setup_tlsmap(cfg, d);
    if (!opt.foreground)
        daemonize();
    write_pidfile(d->pidfile);
    mf_drop_privileges();
    if (pol_config_activate(cfg, &err) != POL_OK)
        mf_fatal(EX_CANTCREAT, "%s", err.msg);
    install_signals();
    pol_config_unref(mf_config_swap(cfg));
    return mf_run(d->shutdown_timeout);
}
