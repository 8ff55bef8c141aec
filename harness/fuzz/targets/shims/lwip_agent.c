/*
 * lwip_agent.c: the lwIP 2.1.3 TCP stack behind synack's agent contract.
 *
 * Contract: version 1 (docs/agent-protocol.md).  Run it through synack:
 *
 *     synack fuzz --target agent:"/tmp/shim-lwip/lwip_agent"
 *
 * Build (Debian's liblwip-dev: lwIP 2.1.3, posix port, NO_SYS=0, sockets):
 *
 *     cc -O2 -Wall -Wextra -std=gnu11 -o /tmp/shim-lwip/lwip_agent \
 *        harness/shims/lwip_agent.c $(pkg-config --cflags --libs lwip) -lpthread
 *
 * The stack: tcpip_init() starts lwIP's tcpip thread, which runs every
 * lwIP timer in real time (TCP_TMR_INTERVAL = 250 ms; RTO 3 s at first).
 * One netif without Ethernet (no NETIF_FLAG_ETHARP) owns SYNACK_LOCAL
 * (198.18.0.1/15); it is the default route and up.  Its IPv4 `output`
 * copies the pbuf chain into one datagram on SYNACK_PACKET_FD.  lwIP
 * computes and checks every checksum itself (CHECKSUM_GEN_* and
 * CHECKSUM_CHECK_* are 1, the defaults, in Debian's lwipopts.h).
 *
 * One thread: the main thread poll()s stdin and the packet socket.  A
 * packet is handed to lwIP synchronously, under the core lock
 * (LWIP_TCPIP_CORE_LOCKING=1), with netif->input (ip_input) - not
 * tcpip_input(), which would queue it for the tcpip thread and let the
 * next command overtake it.  synack writes a segment before the command
 * that follows it, so every queued packet is taken before each command:
 * lwIP sees the events in synack's order, and its replies are on the
 * socket before synack starts to collect.  No call ever blocks (every
 * socket is O_NONBLOCK, recv uses MSG_DONTWAIT, packets are sent with
 * MSG_DONTWAIT: one that does not fit is dropped, as a link would).
 *
 * Commands (lwIP's sockets API, lwip_*):
 *   reset     every pcb of the previous example is aborted (tcp_abort on
 *             tcp_active_pcbs under the core lock: RST to synchronized
 *             peers), every socket is closed, then the TIME-WAIT pcbs are
 *             freed (quirk 4); nothing of it answers any more.  `ok`
 *   listen P  lwip_socket, SO_REUSEADDR, TCP_NODELAY, O_NONBLOCK
 *             (lwip_fcntl), lwip_bind SYNACK_LOCAL:P, lwip_listen(8)
 *   connect P Q  lwip_socket, O_NONBLOCK, TCP_NODELAY, lwip_bind P,
 *             lwip_connect SYNACK_PEER:Q; EINPROGRESS is `ok`
 *   accept    lwip_accept on the (non-blocking) listener; on success the
 *             listener is closed (keeps_listener=0)
 *   send HEX  lwip_send(MSG_DONTWAIT): `ok N`
 *   recv      lwip_recv(MSG_DONTWAIT): `data HEX`, `eof` (0), `errno ...`
 *   shutdown  lwip_shutdown(SHUT_WR)
 *   close     lwip_close
 *   abort     SO_LINGER {1, 0}, then tcp_abort() on the connection's pcb
 *             under the core lock, then lwip_close (see quirk 1)
 *   wait      `ok` (time is real: synack never needs it)
 *   quit, or end of stdin: exit 0
 * Errno names are the C ones: this lwIP uses the system's <errno.h>
 * (LWIP_ERRNO_STDINCLUDE), so strerrorname_np() names them.
 *
 * Hello traits, and why:
 *   exact_windows=0       lwIP advertises its own window (TCP_WND 0xFFFF
 *                         less what the application has not read yet).
 *   user_outputs=0        sockets report no RFC user replies, only errnos.
 *   spontaneous_timers=1  lwIP's timers run in real time in its tcpip thread.
 *   calls_in_any_state=0  socket calls mean what the model's do only once
 *                         the connection is synchronized.
 *   holds_out_of_order=1  TCP_QUEUE_OOSEQ is 1 (opt.h default, not changed
 *                         by Debian's lwipopts.h): text above RCV.NXT is queued.
 *   slow_waits=1          a retransmission timeout costs 3 s of real time.
 *   keeps_listener=0      the shim closes the listener once it has accepted.
 *   congestion_control=1  lwIP keeps cwnd/ssthresh (slow start, RFC 5681).
 *
 * lwIP quirks handled here:
 *  1. SO_LINGER {1, 0} + close() aborts (RST) only when the pcb holds
 *     unsent or unacknowledged data (lwip_netconn_do_close_internal);
 *     otherwise lwIP closes gracefully (FIN, or RST if unread text is
 *     queued).  The contract's abort is the RFC ABORT call, which lwIP
 *     offers as tcp_abort(); the shim calls it.  SYNACK_LWIP_ABORT=linger
 *     keeps lwIP's own linger-0 close instead (to see the difference).
 *  2. lwIP delays ACKs of in-order text (TF_ACK_DELAY, sent by the 250 ms
 *     fast timer or with every second segment).  synack waits 50 ms for a
 *     segment it expects; as the linux target does with the `quickack`
 *     route attribute, the shim sends a delayed ACK at once after each
 *     packet (tcp_ack_now + tcp_output under the core lock).
 *     SYNACK_LWIP_DELAYED_ACK=1 keeps lwIP's delayed ACKs.
 *  3. lwIP's netif has IPv6 on (Debian's build): with no output_ip6 set it
 *     emits no IPv6 packet; no IGMP flag, so no IGMP either.
 *  4. tcp_abort() of a TIME-WAIT pcb frees it without telling its netconn
 *     (no err callback), unlike every other state.  A socket that has
 *     shut down and then received the peer's FIN still points at its
 *     TIME-WAIT pcb, and lwip_close() would free it again (glibc: "double
 *     free").  TIME-WAIT pcbs are freed only after the sockets are closed.
 *  5. lwIP 2.1.3 frees the pcb of a socket that is still open, and the
 *     socket keeps pointing at it: shutdown(SHUT_WR) in CLOSE-WAIT, then
 *     recv() returns 0 (the netconn shuts down its receive side, which
 *     sets TF_RXCLOSED but, in LAST-ACK, keeps the pcb: the state list
 *     in lwip_netconn_do_close_internal lacks LAST_ACK, fixed upstream
 *     later), then the ACK of the FIN closes the pcb: tcp_input() frees
 *     it without the err callback because TF_RXCLOSED is set.  The next
 *     send() would write to freed memory and close() frees it twice
 *     (glibc: "double free detected").  After every packet the shim
 *     checks, under the core lock, that the socket's pcb is still on one
 *     of lwIP's pcb lists; if not, the netconn lets go of it (pcb = NULL:
 *     calls then fail with ENOTCONN) and the next reply is preceded by an
 *     `event` line saying so.
 *  6. Every RST lwIP sends carries ACK (tcp_rst()); ISNs are a counter
 *     plus tcp_ticks.  Both are lwIP's own behaviour, left as they are
 *     (docs/stacks/lwip.md lists what the fuzzer finds).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lwip/opt.h"
#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/ip4.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/sockets.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"
#include "lwip/api.h"
#include "lwip/priv/sockets_priv.h"
#include "lwip/priv/tcp_priv.h"

#define PROTOCOL 1
#define MAX_PACKET 65536

static int packet_fd = -1;
static struct netif shim_netif;
static ip4_addr_t local_addr, peer_addr;
static int listener = -1, conn = -1;
static struct netconn *conn_nc; /* the netconn behind `conn` (quirk 5) */
static int detached;            /* quirk 5 happened: say so with the next reply */
static u16_t local_port;
static int quickack = 1;     /* quirk 2 */
static int linger_abort = 0; /* quirk 1 */
static unsigned char out_buf[MAX_PACKET]; /* used under the core lock only */
static unsigned long dropped;

/* ------------------------------------------------------------ the netif */

static err_t shim_output(struct netif *netif, struct pbuf *p, const ip4_addr_t *dst)
{
    (void)netif;
    (void)dst;
    u16_t len = pbuf_copy_partial(p, out_buf, p->tot_len, 0);
    if (send(packet_fd, out_buf, len, MSG_DONTWAIT) < 0) {
        dropped++;
        fprintf(stderr, "lwip_agent: packet dropped (%s), %lu so far\n", strerror(errno), dropped);
    }
    return ERR_OK;
}

static err_t shim_netif_init(struct netif *netif)
{
    netif->name[0] = 's';
    netif->name[1] = 'k';
    netif->output = shim_output;
    netif->mtu = 1500;
    netif->flags = NETIF_FLAG_LINK_UP; /* no NETIF_FLAG_ETHARP, no IGMP */
    return ERR_OK;
}

/* Quirk 2: what lwIP would ACK within 250 ms goes out now. */
static void flush_delayed_acks(void)
{
    for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) {
        if (pcb->flags & TF_ACK_DELAY) {
            tcp_ack_now(pcb);
            tcp_output(pcb);
        }
    }
}

/* Quirk 5: whether `pcb` is still one of lwIP's (on one of its lists). */
static int pcb_listed(const struct tcp_pcb *pcb)
{
    struct tcp_pcb *lists[] = {tcp_active_pcbs, tcp_tw_pcbs, tcp_bound_pcbs, tcp_listen_pcbs.pcbs};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        for (const struct tcp_pcb *p = lists[i]; p != NULL; p = p->next)
            if (p == pcb)
                return 1;
    return 0;
}

/* Quirk 5: a socket whose pcb lwIP freed without telling it lets go of it. */
static void detach_freed_pcb(void)
{
    if (conn_nc != NULL && conn_nc->pcb.tcp != NULL && !pcb_listed(conn_nc->pcb.tcp)) {
        conn_nc->pcb.tcp = NULL;
        detached = 1;
        fprintf(stderr, "lwip_agent: lwIP freed the pcb of an open socket (LAST-ACK after "
                        "recv() returned 0); the socket lets go of it\n");
    }
}

/* Every datagram waiting on the packet socket, into lwIP, in order. */
static void take_packets(void)
{
    static unsigned char in_buf[MAX_PACKET];
    for (;;) {
        ssize_t n = recv(packet_fd, in_buf, sizeof in_buf, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fprintf(stderr, "lwip_agent: packet socket: %s\n", strerror(errno));
            return;
        }
        if (n == 0)
            continue; /* an empty datagram carries nothing */
        struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_POOL);
        if (p == NULL) {
            fprintf(stderr, "lwip_agent: pbuf_alloc failed, packet dropped\n");
            continue;
        }
        pbuf_take(p, in_buf, (u16_t)n);
        LOCK_TCPIP_CORE();
        if (shim_netif.input(p, &shim_netif) != ERR_OK)
            pbuf_free(p);
        detach_freed_pcb();
        if (quickack)
            flush_delayed_acks();
        UNLOCK_TCPIP_CORE();
    }
}

/* -------------------------------------------------------------- sockets */

static const char *errno_name(int e)
{
    if (e == EWOULDBLOCK)
        return "EAGAIN";
    const char *name = strerrorname_np(e);
    static char unknown[32];
    if (name == NULL) {
        snprintf(unknown, sizeof unknown, "E%d", e);
        return unknown;
    }
    return name;
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    if (detached) {
        fputs("event lwip freed the pcb of the open socket (lwIP 2.1.3 LAST-ACK bug, "
              "see the shim's quirk 5)\n", stdout);
        detached = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static void reply_errno(void) { reply("errno %s", errno_name(errno)); }

static void set_linger0(int s)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    lwip_setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static int set_options(int s)
{
    int one = 1;
    if (lwip_fcntl(s, F_SETFL, O_NONBLOCK) < 0)
        return -1;
    return lwip_setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* tcp_abort() every active pcb on local port `port` (0: on any port).  The
   netconn of each hears ERR_ABRT (err_tcp) and lets go of it. */
static void abort_active(u16_t port)
{
    LOCK_TCPIP_CORE();
    int again = 1;
    for (int guard = 0; again && guard < 10000; guard++) {
        again = 0;
        for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) {
            if (port == 0 || pcb->local_port == port) {
                tcp_abort(pcb); /* the list changed: walk it again */
                again = 1;
                break;
            }
        }
    }
    UNLOCK_TCPIP_CORE();
}

/* Free every TIME-WAIT pcb.  Only once no socket holds one: tcp_abort() of
   a TIME-WAIT pcb tells nobody, and a netconn that still pointed at it
   (shutdown(), then the peer's FIN) would free it a second time. */
static void free_time_wait(void)
{
    LOCK_TCPIP_CORE();
    for (int guard = 0; tcp_tw_pcbs != NULL && guard < 10000; guard++)
        tcp_abort(tcp_tw_pcbs);
    UNLOCK_TCPIP_CORE();
}

static void close_socket(int *s)
{
    if (*s >= 0) {
        if (*s == conn)
            conn_nc = NULL;
        lwip_close(*s);
        *s = -1;
    }
}

static void set_conn(int s)
{
    struct lwip_sock *sock = lwip_socket_dbg_get_socket(s);
    conn = s;
    conn_nc = sock != NULL ? sock->conn : NULL;
}

static void drop_everything(void)
{
    if (conn >= 0)
        set_linger0(conn);
    abort_active(0);
    close_socket(&conn);
    close_socket(&listener);
    abort_active(0); /* whatever closing the listener let go */
    free_time_wait();
}

static void fill_addr(struct sockaddr_in *sa, const ip4_addr_t *addr, u16_t port)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    sa->sin_addr.s_addr = ip4_addr_get_u32(addr);
}

static int parse_port(const char *word, u16_t *port)
{
    if (word == NULL)
        return -1;
    char *end;
    long v = strtol(word, &end, 10);
    if (*end != '\0' || v < 1 || v > 65535)
        return -1;
    *port = (u16_t)v;
    return 0;
}

static void cmd_listen(const char *arg)
{
    u16_t port;
    if (parse_port(arg, &port) < 0) {
        reply("error listen needs a port");
        return;
    }
    drop_everything();
    int s = lwip_socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) {
        reply_errno();
        return;
    }
    int one = 1;
    struct sockaddr_in sa;
    fill_addr(&sa, &local_addr, port);
    if (lwip_setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 || set_options(s) < 0 ||
        lwip_bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || lwip_listen(s, 8) < 0) {
        int e = errno;
        lwip_close(s);
        errno = e;
        reply_errno();
        return;
    }
    listener = s;
    local_port = port;
    reply("ok");
}

static void cmd_connect(const char *arg1, const char *arg2)
{
    u16_t port, peer_port;
    if (parse_port(arg1, &port) < 0 || parse_port(arg2, &peer_port) < 0) {
        reply("error connect needs PORT PEER_PORT");
        return;
    }
    drop_everything();
    int s = lwip_socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) {
        reply_errno();
        return;
    }
    int one = 1;
    struct sockaddr_in sa, peer;
    fill_addr(&sa, &local_addr, port);
    fill_addr(&peer, &peer_addr, peer_port);
    if (lwip_setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 || set_options(s) < 0 ||
        lwip_bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        lwip_close(s);
        errno = e;
        reply_errno();
        return;
    }
    set_conn(s);
    local_port = port;
    if (lwip_connect(s, (struct sockaddr *)&peer, sizeof peer) < 0 && errno != EINPROGRESS) {
        reply_errno();
        return;
    }
    reply("ok");
}

static void cmd_accept(void)
{
    if (conn >= 0) {
        reply("accepted");
        return;
    }
    if (listener < 0) {
        reply("errno EAGAIN");
        return;
    }
    int s = lwip_accept(listener, NULL, NULL);
    if (s < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            reply("errno EAGAIN");
        else
            reply_errno();
        return;
    }
    set_options(s);
    set_conn(s);
    close_socket(&listener);
    reply("accepted");
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
    static unsigned char data[MAX_PACKET];
    size_t n = 0;
    if (hex != NULL) {
        size_t len = strlen(hex);
        if (len % 2 != 0 || len / 2 > sizeof data) {
            reply("error send: bad hex");
            return;
        }
        for (size_t i = 0; i < len; i += 2) {
            int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
            if (hi < 0 || lo < 0) {
                reply("error send: bad hex");
                return;
            }
            data[n++] = (unsigned char)(hi << 4 | lo);
        }
    }
    if (conn < 0) {
        reply("errno ENOTCONN");
        return;
    }
    if (n == 0) {
        reply("ok 0");
        return;
    }
    ssize_t sent = lwip_send(conn, data, n, MSG_DONTWAIT);
    if (sent < 0)
        reply_errno();
    else
        reply("ok %zd", sent);
}

static void cmd_recv(void)
{
    static unsigned char data[MAX_PACKET];
    static char hex[2 * MAX_PACKET + 1];
    if (conn < 0) {
        reply("errno ENOTCONN");
        return;
    }
    ssize_t n = lwip_recv(conn, data, sizeof data, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            reply("errno EAGAIN");
        else
            reply_errno();
        return;
    }
    if (n == 0) {
        reply("eof");
        return;
    }
    static const char digits[] = "0123456789abcdef";
    for (ssize_t i = 0; i < n; i++) {
        hex[2 * i] = digits[data[i] >> 4];
        hex[2 * i + 1] = digits[data[i] & 15];
    }
    hex[2 * n] = '\0';
    reply("data %s", hex);
}

static void cmd_shutdown(void)
{
    if (conn < 0) {
        reply("errno ENOTCONN");
        return;
    }
    if (lwip_shutdown(conn, SHUT_WR) < 0)
        reply_errno();
    else
        reply("ok");
}

static void cmd_close(void)
{
    if (conn >= 0)
        close_socket(&conn);
    else
        close_socket(&listener);
    reply("ok");
}

static void cmd_abort(void)
{
    if (conn >= 0) {
        set_linger0(conn);
        if (!linger_abort)
            abort_active(local_port);
        close_socket(&conn);
    } else if (listener >= 0) {
        /* Nothing accepted yet: the listener and what it holds go. */
        abort_active(local_port);
        close_socket(&listener);
    }
    reply("ok");
}

/* One command line; returns 0 on quit. */
static int command(char *line)
{
    char *words[4] = {0};
    int n = 0;
    for (char *w = strtok(line, " \t\r"); w != NULL && n < 4; w = strtok(NULL, " \t\r"))
        words[n++] = w;
    if (n == 0)
        return 1;
    const char *name = words[0];
    if (strcmp(name, "quit") == 0)
        return 0;
    take_packets(); /* what synack sent before this command comes first */
    if (strcmp(name, "reset") == 0) {
        drop_everything();
        local_port = 0;
        reply("ok");
    } else if (strcmp(name, "listen") == 0) {
        cmd_listen(words[1]);
    } else if (strcmp(name, "connect") == 0) {
        cmd_connect(words[1], words[2]);
    } else if (strcmp(name, "accept") == 0) {
        cmd_accept();
    } else if (strcmp(name, "send") == 0) {
        cmd_send(words[1]);
    } else if (strcmp(name, "recv") == 0) {
        cmd_recv();
    } else if (strcmp(name, "shutdown") == 0) {
        cmd_shutdown();
    } else if (strcmp(name, "close") == 0) {
        cmd_close();
    } else if (strcmp(name, "abort") == 0) {
        cmd_abort();
    } else if (strcmp(name, "wait") == 0) {
        reply("ok");
    } else {
        reply("error unknown command %s", name);
    }
    return 1;
}

/* ----------------------------------------------------------------- main */

static void tcpip_ready(void *arg) { sys_sem_signal((sys_sem_t *)arg); }

static int env_addr(const char *name, const char *fallback, ip4_addr_t *addr)
{
    const char *text = getenv(name);
    if (text == NULL)
        text = fallback;
    if (!ip4addr_aton(text, addr)) {
        fprintf(stderr, "lwip_agent: %s=%s is not an IPv4 address\n", name, text);
        return -1;
    }
    return 0;
}

int main(void)
{
    const char *fd_text = getenv("SYNACK_PACKET_FD");
    if (fd_text == NULL) {
        fprintf(stderr, "lwip_agent: SYNACK_PACKET_FD is not set (run it through synack)\n");
        return 2;
    }
    packet_fd = atoi(fd_text);
    if (env_addr("SYNACK_LOCAL", "198.18.0.1", &local_addr) < 0 ||
        env_addr("SYNACK_PEER", "198.18.0.2", &peer_addr) < 0)
        return 2;
    const char *delayed = getenv("SYNACK_LWIP_DELAYED_ACK");
    quickack = !(delayed != NULL && strcmp(delayed, "1") == 0);
    const char *abort_mode = getenv("SYNACK_LWIP_ABORT");
    linger_abort = abort_mode != NULL && strcmp(abort_mode, "linger") == 0;

    sys_sem_t ready;
    if (sys_sem_new(&ready, 0) != ERR_OK) {
        fprintf(stderr, "lwip_agent: sys_sem_new failed\n");
        return 2;
    }
    tcpip_init(tcpip_ready, &ready);
    sys_sem_wait(&ready);
    sys_sem_free(&ready);

    ip4_addr_t mask, gw;
    IP4_ADDR(&mask, 255, 254, 0, 0);
    ip4_addr_set_zero(&gw);
    LOCK_TCPIP_CORE();
    struct netif *added =
        netif_add(&shim_netif, &local_addr, &mask, &gw, NULL, shim_netif_init, ip_input);
    if (added != NULL) {
        netif_set_default(&shim_netif);
        netif_set_link_up(&shim_netif);
        netif_set_up(&shim_netif);
    }
    UNLOCK_TCPIP_CORE();
    if (added == NULL) {
        fprintf(stderr, "lwip_agent: netif_add failed\n");
        return 2;
    }

    printf("synack-agent %d name=lwip exact_windows=0 user_outputs=0 spontaneous_timers=1 "
           "calls_in_any_state=0 holds_out_of_order=%d slow_waits=1 keeps_listener=0 "
           "congestion_control=1\n",
           PROTOCOL, TCP_QUEUE_OOSEQ ? 1 : 0);
    fflush(stdout);

    static char pending[4 * MAX_PACKET];
    size_t used = 0;
    struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                            {.fd = packet_fd, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "lwip_agent: poll: %s\n", strerror(errno));
            return 2;
        }
        if (fds[1].revents & POLLIN)
            take_packets();
        if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (used == sizeof pending) {
            fprintf(stderr, "lwip_agent: command line too long\n");
            return 2;
        }
        ssize_t n = read(STDIN_FILENO, pending + used, sizeof pending - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "lwip_agent: stdin: %s\n", strerror(errno));
            return 2;
        }
        if (n == 0)
            break; /* end of input */
        used += (size_t)n;
        char *start = pending, *nl;
        while ((nl = memchr(start, '\n', used - (size_t)(start - pending))) != NULL) {
            *nl = '\0';
            if (!command(start)) {
                fflush(stdout);
                _exit(0);
            }
            start = nl + 1;
        }
        used -= (size_t)(start - pending);
        memmove(pending, start, used);
    }
    fflush(stdout);
    _exit(0);
}
