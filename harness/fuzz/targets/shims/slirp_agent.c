/*
 * slirp_agent: libslirp's TCP (BSD-derived, libslirp 4.7) behind synack's
 * agent contract, version 1 (docs/agent-protocol.md).  synack plays the
 * guest; slirp's own virtual address is the stack under test.
 *
 * Build (one cc invocation; libslirp.h needs no glib headers, and slirp.pc
 * cannot be used when glib-2.0.pc is missing, so the flags are given by hand):
 *
 *   cc -O2 -Wall -Wextra -std=gnu11 -o /tmp/shim-slirp/slirp_agent \
 *      harness/shims/slirp_agent.c -I/usr/include/slirp -lslirp
 *
 * (`$(pkg-config --cflags --libs slirp)` gives the same two flags where
 * glib's development files are installed.)  Run it through synack:
 *
 *   synack fuzz --target agent:"/tmp/shim-slirp/slirp_agent"
 *
 * Options: --realtime runs slirp's timers on CLOCK_MONOTONIC instead of the
 * virtual clock (hello then says spontaneous_timers=1 slow_waits=1).
 *
 * NETWORK SAFETY.  slirp is a NAT: it terminates the guest's TCP and opens
 * real host sockets.  Before anything else the agent unshare(CLONE_NEWNET)s
 * (it must run as root; otherwise it says why on stderr and exits 2) and
 * brings up `lo` in the fresh namespace, which has no other interface: every
 * host socket slirp makes can only reach that namespace's loopback, and the
 * namespace dies with the process.  DNS, DHCP, IPv6 and emulation are
 * disabled; no guestfwd/exec forwarding is configured.
 *
 * Addresses: the virtual network is 198.18.0.0/24, slirp's vhost is
 * SYNACK_LOCAL (198.18.0.1), the guest is SYNACK_PEER (198.18.0.2).  slirp
 * speaks Ethernet: the agent adds and strips a 14-byte header, invents the
 * guest's MAC, announces it with a gratuitous ARP after every (re)start and
 * answers slirp's ARP requests for the guest itself.  Only IPv4/TCP packets
 * go to synack (one datagram = one raw IPv4 packet, both ways); anything
 * else slirp emits (ARP, ICMP) is dropped and counted on stderr.
 *
 * The application side is a kernel TCP socket on the namespace's loopback,
 * connected to the host socket slirp made: slirp relays between it and the
 * guest, so what synack observes on the wire is slirp's TCP; the kernel
 * connection only carries the octets, FIN and RST of the application's calls
 * (it is TCP_NODELAY, so no Nagle delay on the application side).
 *
 * Commands:
 *   reset        close every application socket with SO_LINGER {1,0}, then
 *                slirp_cleanup() and slirp_new() afresh (no state of the
 *                previous example survives), virtual clock back to its start,
 *                gratuitous ARP, one dummy host forward (see timers) -> ok
 *   listen P     kernel listener on 127.0.0.1:P.  The guest's SYN to
 *                198.18.0.1:P makes slirp connect() to 127.0.0.1:P (slirp
 *                maps its vhost to the host's loopback when not restricted);
 *                slirp answers SYN,ACK once that connect succeeded, RST,ACK
 *                if it is refused                           -> ok | errno E
 *   connect P Q  slirp_add_hostfwd(127.0.0.2:10 -> 198.18.0.2:Q); a kernel
 *                socket bound to 127.0.0.1:P connects (non-blocking) to
 *                127.0.0.2:10; slirp accepts it and opens its TCP to the
 *                guest; slirp takes the connecting socket's address and port
 *                as its own (127.0.0.1 -> vhost), so its segments come from
 *                198.18.0.1:P as synack expects.  The forward's own port must
 *                not be P: slirp files a host forward under the 4-tuple
 *                (guest:Q, vhost:host-port) and silently drops every guest
 *                segment that matches it (its tcpcb stays CLOSED), so with
 *                port P a new SYN after the connection died would vanish
 *                                                             -> ok | errno E
 *   accept       `accepted` when the kernel listener has the connection whose
 *                peer is slirp's host socket AND slirp's TCP for it is
 *                synchronized (ESTABLISHED or later, read from
 *                slirp_connection_info()); the kernel completes the loopback
 *                connection as soon as slirp connect()s, i.e. while slirp is
 *                still in SYN-RECEIVED, so accept() alone would be early.  The
 *                listener is then closed (hello: keeps_listener=0) -> accepted
 *                | errno EAGAIN
 *   send HEX     send(MSG_DONTWAIT|MSG_NOSIGNAL) on the application socket
 *                -> ok N | errno E (ENOTCONN before there is a socket, EPIPE
 *                after close/abort)
 *   recv         recv(MSG_DONTWAIT) -> data HEX | eof | errno EAGAIN | errno E
 *                (EAGAIN before accept, eof after close/abort, as the model)
 *   shutdown     shutdown(SHUT_WR) (before accept: the listener closes) -> ok
 *   close        close()                                      -> ok
 *   abort        SO_LINGER {1,0} + close(): the kernel's RST makes slirp
 *                tcp_drop() its connection (it sends the guest a RST) -> ok
 *   wait         virtual time: advance the clock one slow tick (500 ms) at a
 *                time until slirp emitted a segment or its connection table
 *                changed (state, queues, a connection gone), at most
 *                WAIT_TICKS ticks; nothing to do without a connection -> ok
 *   quit / EOF   exit 0.  Anything else -> `error ...`.
 * Every command is answered at once; before the reply slirp is pumped until
 * quiet, so what the command made slirp send is on the packet socket first.
 *
 * Timers (virtual time, the default).  slirp reads its clock only in
 * slirp_pollfds_poll(): the BSD slow timer (retransmission, persist, keep,
 * 2MSL; 500 ms ticks) runs when 499 ms have passed since the last tick, the
 * fast timer (delayed ACK) 2 ms after it was requested.  The agent's clock
 * stands still except: (1) whenever slirp asks for the fast timer, the pump
 * moves the clock 2 ms at once, so a delayed ACK leaves before the reply as
 * it would within 2 ms of real time; (2) `wait` moves it in whole ticks.
 * slirp only runs the slow timer while it has a TCP socket, and its first
 * tick would otherwise come at an arbitrary moment; a dummy host forward
 * (127.0.0.3:9, never connected) keeps one socket alive so that ticks come
 * only from `wait` (after 250 delayed ACKs in one example, 2 ms steps add up
 * to one tick: a rare early tick, as real time would give).  Hello says
 * spontaneous_timers=0 slow_waits=0.
 *
 * libslirp 4.7 bug NOT worked around (docs/stacks/slirp.md, "Harness
 * issues"): an URG segment whose urgent pointer reaches past the octets
 * slirp holds (URG,ACK,PSH up=8 carrying 3 octets, in ESTABLISHED) makes
 * tcp_input() set so->so_urgc = sb_cc + (rcv_up - rcv_nxt), more than the
 * receive buffer holds; sbappend() -> sosendoob() (socket.c) then send()s
 * so_urgc octets from sb_rptr, i.e. uninitialised heap (valgrind: "Syscall
 * param socketcall.sendto(msg) points to uninitialised byte(s)" under
 * slirp_pollfds_poll), and `sb_cc -= n` wraps below zero, so later
 * sowrite()s push ~64 KiB of stale buffer to the application and the
 * advertised window is computed from the wrapped count (not checked here
 * against later upstream releases).  Every read and write stays inside slirp's buffers
 * (valgrind reports no invalid access), so it is not a crash; the agent
 * passes such segments on unchanged, because rewriting the guest's urgent
 * pointer would change what synack tests.
 *
 * Quirks handled: ARP both ways; SIGPIPE ignored; the kernel listener may
 * hold stale loopback connections of slirp sockets that died in SYN-RECEIVED
 * (they are matched by port and dropped); slirp's ARP replies and requests
 * are answered outside its callbacks (slirp_input is not re-entered).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libslirp.h>

#define MAX_PFDS 512
#define MAX_LINE 200000
#define PUMP_ROUNDS 64
#define TICK_MS 500
#define WAIT_TICKS 1500 /* 750 s: past slirp's longest timer (FIN-WAIT-2, 600 s) */
#define CLOCK_START_MS 1000
#define MAX_POOL 16
#define MAX_TIMERS 8
#define FWD_PORT 10 /* the host forward's port, on 127.0.0.2 */

static Slirp *slirp;
static int pkt_fd = -1;
static int realtime;
static int debug; /* SLIRP_AGENT_DEBUG=1: slirp's connection table on stderr */
static int64_t vclock_ms = CLOCK_START_MS;
static int64_t last_tick_ms; /* the clock at slirp's last slow tick (a shadow) */
static unsigned long tcp_out;      /* TCP packets sent to synack */
static unsigned long dropped_out;  /* non-TCP packets slirp sent, dropped */

static struct in_addr local_ip, peer_ip;
static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static uint8_t slirp_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* ARP frames to hand to slirp after its callback returns */
static uint8_t arp_queue[4][64];
static int arp_queued;

/* the application side */
static int listen_fd = -1;
static int app_fd = -1;
static int app_gone;          /* the application closed/aborted its socket */
static int pool[MAX_POOL];    /* connections accepted from the listener, not yet matched */
static int npool;
static int port, peer_port;

/* slirp's poll set */
static struct pollfd pfds[MAX_PFDS];
static int npfds;

struct vtimer {
    int used, armed;
    int64_t expire_ms;
    SlirpTimerCb cb;
    void *cb_opaque;
    int opaque_kind; /* 1: timer_new_opaque (slirp_handle_timer) */
    SlirpTimerId id;
};
static struct vtimer timers[MAX_TIMERS];

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("slirp_agent: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static int64_t now_ms(void)
{
    if (!realtime)
        return vclock_ms;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *errname(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "EIO";
}

/* ------------------------------------------------------------ Ethernet/ARP */

static void queue_arp(uint16_t op, const uint8_t *dst_mac, uint32_t sip, uint32_t tip,
                      const uint8_t *tha)
{
    if (arp_queued >= 4)
        return;
    uint8_t *f = arp_queue[arp_queued++];
    memset(f, 0, 64);
    memcpy(f, dst_mac, 6);
    memcpy(f + 6, guest_mac, 6);
    f[12] = 0x08, f[13] = 0x06;
    uint8_t *a = f + 14;
    a[0] = 0, a[1] = 1;       /* Ethernet */
    a[2] = 0x08, a[3] = 0x00; /* IPv4 */
    a[4] = 6, a[5] = 4;
    a[6] = 0, a[7] = (uint8_t)op;
    memcpy(a + 8, guest_mac, 6);
    memcpy(a + 14, &sip, 4);
    memcpy(a + 18, tha, 6);
    memcpy(a + 24, &tip, 4);
}

static void flush_arp(void)
{
    while (arp_queued > 0) {
        uint8_t frame[64];
        memcpy(frame, arp_queue[0], 64);
        memmove(arp_queue[0], arp_queue[1], sizeof(arp_queue[0]) * 3);
        arp_queued--;
        slirp_input(slirp, frame, 60);
    }
}

static void gratuitous_arp(void)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t zero[6] = {0};
    queue_arp(1, bcast, peer_ip.s_addr, peer_ip.s_addr, zero);
    flush_arp();
}

/* ------------------------------------------------------------ callbacks */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    (void)opaque;
    const uint8_t *f = buf;
    if (len < 14)
        return (ssize_t)len;
    uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
    if (type == 0x0806 && len >= 14 + 28) {
        const uint8_t *a = f + 14;
        uint16_t op = (uint16_t)(a[6] << 8 | a[7]);
        uint32_t sip, tip;
        memcpy(&sip, a + 14, 4);
        memcpy(&tip, a + 24, 4);
        if (sip == local_ip.s_addr)
            memcpy(slirp_mac, a + 8, 6);
        if (op == 1 && tip == peer_ip.s_addr)
            queue_arp(2, a + 8, peer_ip.s_addr, sip, a + 8);
        return (ssize_t)len;
    }
    if (type == 0x0800 && len >= 14 + 20) {
        const uint8_t *ip = f + 14;
        if ((ip[0] >> 4) == 4 && ip[9] == 6) {
            size_t total = (size_t)(ip[2] << 8 | ip[3]);
            if (total > len - 14)
                total = len - 14;
            if (send(pkt_fd, ip, total, 0) < 0 && errno != EAGAIN)
                die("packet socket: %s", strerror(errno));
            tcp_out++;
            return (ssize_t)len;
        }
    }
    if (dropped_out++ < 5)
        fprintf(stderr, "slirp_agent: dropped a non-TCP frame (ethertype 0x%04x)\n", type);
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    (void)opaque;
    fprintf(stderr, "slirp_agent: slirp guest error: %s\n", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
    (void)opaque;
    return now_ms() * 1000000;
}

static struct vtimer *timer_alloc(void)
{
    for (int i = 0; i < MAX_TIMERS; i++)
        if (!timers[i].used) {
            memset(&timers[i], 0, sizeof(timers[i]));
            timers[i].used = 1;
            return &timers[i];
        }
    die("out of timers");
    return NULL;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    (void)opaque;
    struct vtimer *t = timer_alloc();
    t->cb = cb, t->cb_opaque = cb_opaque;
    return t;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    (void)opaque;
    struct vtimer *t = timer_alloc();
    t->opaque_kind = 1, t->id = id, t->cb_opaque = cb_opaque;
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    (void)opaque;
    ((struct vtimer *)timer)->used = 0;
}

static void cb_timer_mod(void *timer, int64_t expire_time, void *opaque)
{
    (void)opaque;
    struct vtimer *t = timer;
    t->armed = 1, t->expire_ms = expire_time;
}

static void cb_register_poll_fd(int fd, void *opaque) { (void)fd, (void)opaque; }
static void cb_unregister_poll_fd(int fd, void *opaque) { (void)fd, (void)opaque; }
static void cb_notify(void *opaque) { (void)opaque; }

static const SlirpCb callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
    .timer_new_opaque = cb_timer_new_opaque,
};

static void run_timers(void)
{
    int64_t now = now_ms();
    for (int i = 0; i < MAX_TIMERS; i++) {
        struct vtimer *t = &timers[i];
        if (t->used && t->armed && t->expire_ms <= now) {
            t->armed = 0;
            if (t->opaque_kind)
                slirp_handle_timer(slirp, t->id, t->cb_opaque);
            else
                t->cb(t->cb_opaque);
        }
    }
}

/* ------------------------------------------------------------ the pump */

static int cb_add_poll(int fd, int events, void *opaque)
{
    (void)opaque;
    if (npfds >= MAX_PFDS)
        die("too many descriptors");
    short ev = 0;
    if (events & SLIRP_POLL_IN)
        ev |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        ev |= POLLPRI;
    pfds[npfds].fd = fd, pfds[npfds].events = ev, pfds[npfds].revents = 0;
    return npfds++;
}

static int cb_get_revents(int idx, void *opaque)
{
    (void)opaque;
    if (idx < 0 || idx >= npfds)
        return 0;
    short r = pfds[idx].revents;
    int ev = 0;
    if (r & POLLIN)
        ev |= SLIRP_POLL_IN;
    if (r & POLLOUT)
        ev |= SLIRP_POLL_OUT;
    if (r & POLLPRI)
        ev |= SLIRP_POLL_PRI;
    if (r & POLLERR)
        ev |= SLIRP_POLL_ERR;
    if (r & POLLHUP)
        ev |= SLIRP_POLL_HUP;
    return ev;
}

/* One slirp round: fill, poll with `wait_ms` (after the first `extra`
 * descriptors, which the caller set), poll slirp.  Returns poll's count. */
static int slirp_round(int extra, int wait_ms, uint32_t *timeout)
{
    npfds = extra;
    *timeout = UINT32_MAX;
    slirp_pollfds_fill(slirp, timeout, cb_add_poll, NULL);
    int n = poll(pfds, (nfds_t)npfds, wait_ms);
    int64_t before = now_ms();
    /* a slow tick happens in slirp_pollfds_poll when 499 ms have passed */
    if (before - last_tick_ms >= 499)
        last_tick_ms = before;
    slirp_pollfds_poll(slirp, n < 0, cb_get_revents, NULL);
    run_timers();
    flush_arp();
    return n;
}

/* Let slirp do everything it can now: socket events and due fast timers. */
static void pump(void)
{
    for (int i = 0; i < PUMP_ROUNDS; i++) {
        unsigned long out = tcp_out;
        uint32_t timeout;
        int n = slirp_round(0, 0, &timeout);
        int busy = n > 0 || tcp_out != out;
        if (!realtime && timeout <= 2) {
            vclock_ms += 2; /* the delayed-ACK timer: due in 2 ms */
            busy = 1;
        }
        if (!busy)
            return;
    }
}

/* ------------------------------------------------------------ slirp state */

struct conn {
    char state[32];
    int fd;
};

/* slirp's TCP connections (not host forwards); returns how many. */
static int connections(struct conn *out, int max, char **text)
{
    char *info = slirp_connection_info(slirp);
    int n = 0;
    for (char *line = info; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        char state[32];
        int fd;
        if (sscanf(line, " TCP[%31[^]]] %d", state, &fd) == 2 &&
            strcmp(state, "HOST_FORWARD") != 0 && n < max) {
            snprintf(out[n].state, sizeof(out[n].state), "%s", state);
            out[n].fd = fd;
            n++;
        }
        if (!end)
            break;
        *end = '\n';
        line = end + 1;
    }
    if (text)
        *text = info;
    else
        free(info);
    return n;
}

static int synchronized(const char *state)
{
    static const char *const not[] = {"CLOSED", "LISTEN", "SYN_SENT", "SYN_RCVD", "NONE"};
    for (size_t i = 0; i < sizeof(not) / sizeof(not[0]); i++)
        if (strcmp(state, not[i]) == 0)
            return 0;
    return 1;
}

/* ------------------------------------------------------------ lifecycle */

static void close_abort(int fd)
{
    if (fd < 0)
        return;
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void start_slirp(void)
{
    SlirpConfig cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.version = 4;
    cfg.restricted = 0; /* the guest may reach vhost -> the namespace's loopback */
    cfg.in_enabled = true;
    inet_pton(AF_INET, "198.18.0.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    cfg.vhost = local_ip;
    cfg.in6_enabled = false;
    inet_pton(AF_INET, "198.18.0.100", &cfg.vdhcp_start);
    inet_pton(AF_INET, "198.18.0.3", &cfg.vnameserver);
    cfg.disable_host_loopback = false;
    cfg.enable_emu = false;
    cfg.disable_dns = true;
    cfg.disable_dhcp = true;
    vclock_ms = CLOCK_START_MS;
    memset(slirp_mac, 0xff, 6);
    slirp = slirp_new(&cfg, &callbacks, NULL);
    if (!slirp)
        die("slirp_new failed");
    gratuitous_arp();
    /* the dummy forward: keeps slirp's slow timer running, so ticks are ours */
    struct in_addr dummy;
    inet_pton(AF_INET, "127.0.0.3", &dummy);
    if (slirp_add_hostfwd(slirp, 0, dummy, 9, peer_ip, 9) < 0)
        die("dummy host forward: %s", strerror(errno));
    uint32_t timeout;
    last_tick_ms = -1000000;
    slirp_round(0, 0, &timeout); /* the first tick, now */
    pump();
}

static void do_reset(void)
{
    close_abort(app_fd);
    close_abort(listen_fd);
    for (int i = 0; i < npool; i++)
        close_abort(pool[i]);
    app_fd = listen_fd = -1;
    npool = 0;
    app_gone = 0;
    port = peer_port = 0;
    if (slirp)
        slirp_cleanup(slirp);
    for (int i = 0; i < MAX_TIMERS; i++)
        timers[i].used = 0;
    arp_queued = 0;
    start_slirp();
}

static int tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static struct sockaddr_in sin_of(const char *ip, int p)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)p);
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

/* ------------------------------------------------------------ commands */

static char reply[2 * MAX_LINE + 64];

static int parse_port(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 65535)
        return -1;
    return (int)v;
}

static void cmd_listen(int p)
{
    if (listen_fd >= 0 || app_fd >= 0) {
        snprintf(reply, sizeof(reply), "errno EISCONN");
        return;
    }
    int fd = tcp_socket();
    struct sockaddr_in a = sin_of("127.0.0.1", p);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        snprintf(reply, sizeof(reply), "errno %s", errname(e));
        return;
    }
    listen_fd = fd, port = p;
    snprintf(reply, sizeof(reply), "ok");
}

static void cmd_connect(int p, int q)
{
    if (listen_fd >= 0 || app_fd >= 0) {
        snprintf(reply, sizeof(reply), "errno EISCONN");
        return;
    }
    struct in_addr fwd;
    inet_pton(AF_INET, "127.0.0.2", &fwd);
    if (slirp_add_hostfwd(slirp, 0, fwd, FWD_PORT, peer_ip, q) < 0) {
        snprintf(reply, sizeof(reply), "errno %s", errname(errno ? errno : EADDRINUSE));
        return;
    }
    int fd = tcp_socket();
    struct sockaddr_in me = sin_of("127.0.0.1", p), there = sin_of("127.0.0.2", FWD_PORT);
    if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        snprintf(reply, sizeof(reply), "errno %s", errname(e));
        return;
    }
    if (connect(fd, (struct sockaddr *)&there, sizeof(there)) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        snprintf(reply, sizeof(reply), "errno %s", errname(e));
        return;
    }
    app_fd = fd, port = p, peer_port = q;
    snprintf(reply, sizeof(reply), "ok");
}

static int local_port_of(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0 || a.sin_family != AF_INET)
        return -1;
    return ntohs(a.sin_port);
}

static int peer_port_of(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    if (getpeername(fd, (struct sockaddr *)&a, &len) < 0 || a.sin_family != AF_INET)
        return -1;
    return ntohs(a.sin_port);
}

static void cmd_accept(void)
{
    snprintf(reply, sizeof(reply), "errno EAGAIN");
    if (app_fd >= 0 || listen_fd < 0)
        return;
    while (npool < MAX_POOL) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pool[npool++] = fd;
    }
    struct conn cs[16];
    int n = connections(cs, 16, NULL);
    int chosen = -1;
    for (int i = 0; i < npool && chosen < 0; i++) {
        int pp = peer_port_of(pool[i]);
        for (int k = 0; k < n; k++)
            if (local_port_of(cs[k].fd) == pp) {
                if (synchronized(cs[k].state))
                    chosen = i;
                break;
            }
    }
    /* drop pooled connections whose slirp socket is gone (died in SYN-RECEIVED) */
    int kept = 0;
    for (int i = 0; i < npool; i++) {
        int pp = peer_port_of(pool[i]), live = 0;
        for (int k = 0; k < n; k++)
            if (local_port_of(cs[k].fd) == pp)
                live = 1;
        if (i == chosen) {
            app_fd = pool[i];
        } else if (live && chosen < 0) {
            pool[kept++] = pool[i];
        } else {
            close_abort(pool[i]);
        }
    }
    npool = chosen >= 0 ? 0 : kept;
    if (chosen >= 0) {
        close(listen_fd);
        listen_fd = -1;
        snprintf(reply, sizeof(reply), "accepted");
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void cmd_send(const char *hex)
{
    size_t n = strlen(hex);
    if (n % 2) {
        snprintf(reply, sizeof(reply), "error odd hex length");
        return;
    }
    static uint8_t data[MAX_LINE / 2 + 1];
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(reply, sizeof(reply), "error bad hex");
            return;
        }
        data[i] = (uint8_t)(hi << 4 | lo);
    }
    if (app_fd < 0) {
        snprintf(reply, sizeof(reply), "errno %s", app_gone ? "EPIPE" : "ENOTCONN");
        return;
    }
    ssize_t k = send(app_fd, data, n / 2, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (k < 0)
        snprintf(reply, sizeof(reply), "errno %s", errname(errno));
    else
        snprintf(reply, sizeof(reply), "ok %zd", k);
}

static void cmd_recv(void)
{
    if (app_fd < 0) {
        snprintf(reply, sizeof(reply), app_gone ? "eof" : "errno EAGAIN");
        return;
    }
    static uint8_t data[65536];
    ssize_t k = recv(app_fd, data, sizeof(data), MSG_DONTWAIT);
    if (k < 0) {
        snprintf(reply, sizeof(reply), "errno %s", errname(errno));
    } else if (k == 0) {
        snprintf(reply, sizeof(reply), "eof");
    } else {
        char *p = reply + sprintf(reply, "data ");
        for (ssize_t i = 0; i < k; i++)
            p += sprintf(p, "%02x", data[i]);
    }
}

static void cmd_shutdown(void)
{
    snprintf(reply, sizeof(reply), "ok");
    if (app_fd >= 0) {
        if (shutdown(app_fd, SHUT_WR) < 0)
            snprintf(reply, sizeof(reply), "errno %s", errname(errno));
    } else if (listen_fd >= 0) {
        close(listen_fd); /* CLOSE before a connection: the listener goes */
        listen_fd = -1;
        app_gone = 1;
    }
}

static void cmd_close(int abortive)
{
    if (app_fd >= 0) {
        if (abortive)
            close_abort(app_fd);
        else
            close(app_fd);
        app_fd = -1;
    }
    if (listen_fd >= 0) {
        close(listen_fd);
        listen_fd = -1;
    }
    for (int i = 0; i < npool; i++)
        close_abort(pool[i]);
    npool = 0;
    app_gone = 1;
    snprintf(reply, sizeof(reply), "ok");
}

static void cmd_wait(void)
{
    snprintf(reply, sizeof(reply), "ok");
    if (realtime)
        return;
    struct conn cs[16];
    char *before;
    if (connections(cs, 16, &before) == 0) {
        free(before);
        return; /* no connection: no timer of the stack under test is armed */
    }
    for (int i = 0; i < WAIT_TICKS; i++) {
        unsigned long out = tcp_out;
        vclock_ms = last_tick_ms + TICK_MS;
        pump();
        char *after;
        connections(cs, 16, &after);
        int changed = strcmp(before, after) != 0;
        free(after);
        if (changed || tcp_out != out) {
            if (debug)
                fprintf(stderr, "slirp_agent: wait: %d ticks, clock %lld ms\n", i + 1,
                        (long long)vclock_ms);
            break;
        }
    }
    free(before);
}

static void command(char *line)
{
    char *words[4];
    int n = 0;
    for (char *tok = strtok(line, " \t\r"); tok && n < 4; tok = strtok(NULL, " \t\r"))
        words[n++] = tok;
    if (n == 0) {
        reply[0] = 0;
        return;
    }
    const char *name = words[0];
    if (strcmp(name, "reset") == 0) {
        do_reset();
        snprintf(reply, sizeof(reply), "ok");
    } else if (strcmp(name, "listen") == 0 && n == 2 && parse_port(words[1]) > 0) {
        cmd_listen(parse_port(words[1]));
    } else if (strcmp(name, "connect") == 0 && n == 3 && parse_port(words[1]) > 0 &&
               parse_port(words[2]) > 0) {
        cmd_connect(parse_port(words[1]), parse_port(words[2]));
    } else if (strcmp(name, "accept") == 0) {
        cmd_accept();
    } else if (strcmp(name, "send") == 0) {
        cmd_send(n > 1 ? words[1] : "");
    } else if (strcmp(name, "recv") == 0) {
        cmd_recv();
    } else if (strcmp(name, "shutdown") == 0) {
        cmd_shutdown();
    } else if (strcmp(name, "close") == 0) {
        cmd_close(0);
    } else if (strcmp(name, "abort") == 0) {
        cmd_close(1);
    } else if (strcmp(name, "wait") == 0) {
        cmd_wait();
    } else {
        snprintf(reply, sizeof(reply), "error unknown command %.40s", name);
        return;
    }
    pump();
    if (debug) {
        char *info = slirp_connection_info(slirp);
        fprintf(stderr, "slirp_agent: after %s:\n%s", name, info);
        free(info);
    }
}

/* ------------------------------------------------------------ main */

static void packet_in(const uint8_t *pkt, size_t len)
{
    static uint8_t frame[14 + 65536];
    if (len < 20 || len > 65535 || (pkt[0] >> 4) != 4)
        return;
    memcpy(frame, slirp_mac, 6);
    memcpy(frame + 6, guest_mac, 6);
    frame[12] = 0x08, frame[13] = 0x00;
    memcpy(frame + 14, pkt, len);
    slirp_input(slirp, frame, (int)(len + 14));
    flush_arp();
}

static void network_namespace(void)
{
    if (unshare(CLONE_NEWNET) < 0)
        die("unshare(CLONE_NEWNET) failed: %s (run as root: slirp must not reach the real network)",
            strerror(errno));
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        die("lo: %s", strerror(errno));
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        die("bringing up lo: %s", strerror(errno));
    close(s);
}

/* A crash (inside libslirp, say) leaves a backtrace as the last stderr lines. */
static void on_crash(int sig)
{
    void *frames[32];
    int n = backtrace(frames, 32);
    static const char msg[] = "slirp_agent: crashed, backtrace follows\n";
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(128 + sig);
    backtrace_symbols_fd(frames, n, 2);
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--realtime") == 0)
            realtime = 1;
        else
            die("unknown option %s (usage: slirp_agent [--realtime])", argv[i]);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGABRT, on_crash);
    debug = getenv("SLIRP_AGENT_DEBUG") != NULL;
    const char *fdname = getenv("SYNACK_PACKET_FD");
    if (!fdname)
        die("SYNACK_PACKET_FD is not set (run it through synack)");
    pkt_fd = atoi(fdname);
    const char *local = getenv("SYNACK_LOCAL"), *peer = getenv("SYNACK_PEER");
    if (inet_pton(AF_INET, local ? local : "198.18.0.1", &local_ip) != 1 ||
        inet_pton(AF_INET, peer ? peer : "198.18.0.2", &peer_ip) != 1)
        die("bad SYNACK_LOCAL/SYNACK_PEER");
    const char *proto = getenv("SYNACK_PROTOCOL");
    if (proto && strcmp(proto, "1") != 0)
        die("synack speaks protocol %s; this agent speaks 1", proto);
    network_namespace();
    fcntl(pkt_fd, F_SETFL, fcntl(pkt_fd, F_GETFL) | O_NONBLOCK);
    do_reset();

    printf("synack-agent 1 name=slirp exact_windows=0 user_outputs=0 spontaneous_timers=%d "
           "calls_in_any_state=0 holds_out_of_order=1 slow_waits=%d keeps_listener=0 "
           "congestion_control=1\n",
           realtime, realtime);
    fflush(stdout);

    static char buf[MAX_LINE * 2];
    size_t have = 0;
    static uint8_t pkt[65536];
    for (;;) {
        pfds[0].fd = 0, pfds[0].events = POLLIN, pfds[0].revents = 0;
        pfds[1].fd = pkt_fd, pfds[1].events = POLLIN, pfds[1].revents = 0;
        uint32_t timeout = UINT32_MAX;
        npfds = 2;
        slirp_pollfds_fill(slirp, &timeout, cb_add_poll, NULL);
        int wait_ms = -1;
        if (realtime)
            wait_ms = timeout == UINT32_MAX ? -1 : (int)timeout;
        else if (timeout <= 2)
            wait_ms = 0;
        int n = poll(pfds, (nfds_t)npfds, wait_ms);
        if (n < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        short in0 = pfds[0].revents, in1 = pfds[1].revents;
        if (!realtime && timeout <= 2)
            vclock_ms += 2;
        int64_t t = now_ms();
        if (t - last_tick_ms >= 499)
            last_tick_ms = t;
        slirp_pollfds_poll(slirp, n < 0, cb_get_revents, NULL);
        run_timers();
        flush_arp();
        if (in1 & POLLIN) {
            for (;;) {
                ssize_t k = recv(pkt_fd, pkt, sizeof(pkt), MSG_DONTWAIT);
                if (k < 0)
                    break;
                packet_in(pkt, (size_t)k);
            }
            pump();
        }
        if (in0 & (POLLIN | POLLHUP)) {
            ssize_t k = read(0, buf + have, sizeof(buf) - 1 - have);
            if (k <= 0)
                return 0;
            have += (size_t)k;
            char *nl;
            while ((nl = memchr(buf, '\n', have))) {
                *nl = 0;
                if (strcmp(buf, "quit") == 0 || strncmp(buf, "quit ", 5) == 0)
                    return 0;
                command(buf);
                if (reply[0]) {
                    fputs(reply, stdout);
                    fputc('\n', stdout);
                    fflush(stdout);
                }
                size_t used = (size_t)(nl + 1 - buf);
                memmove(buf, nl + 1, have - used);
                have -= used;
            }
            if (have >= sizeof(buf) - 1)
                die("command line too long");
        }
    }
}
