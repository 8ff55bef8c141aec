// gvisor_agent: gVisor's netstack (gvisor.dev/gvisor/pkg/tcpip) behind
// synack's agent contract, version 1 (docs/agent-protocol.md), so that
//
//	synack fuzz --target agent:"/tmp/shim-gvisor/gvisor_agent"
//
// fuzzes gVisor's TCP. It behaves like the reference agent
// (harness/fuzz/targets/model_agent.py) command by command.
//
// Build (offline, GOPATH mode, Debian's golang-gvisor-gvisor-dev 0.0~20221219
// and golang-go 1.19):
//
//	mkdir -p /tmp/shim-gvisor && cd harness/shims && \
//	GO111MODULE=off GOPATH=/tmp/shim-gvisor/gopath:/usr/share/gocode \
//	GOPROXY=off GOCACHE=/tmp/shim-gvisor/gocache GOFLAGS= \
//	go build -o /tmp/shim-gvisor/gvisor_agent gvisor_agent.go
//
// Packets: SYNACK_PACKET_FD is one end of a socketpair(AF_UNIX, SOCK_DGRAM),
// one datagram = one IPv4 packet. It is the fd of an fdbased link endpoint
// without Ethernet header (MTU 1500, recvmmsg dispatch), NIC 1, address
// SYNACK_LOCAL/15 with a route for 198.18.0.0/15. The stack computes and
// checks every checksum itself (no offload).
//
// Commands (stdin, one reply line each on stdout; diagnostics on stderr):
//
//	reset            Abort() every endpoint made since the last reset
//	                 (listener, connection, orphans in LAST-ACK or TIME-WAIT):
//	                 nothing of the previous example answers any more
//	listen PORT      NewEndpoint, Bind(LOCAL:PORT), Listen(8)
//	connect P PP     NewEndpoint, Bind(LOCAL:P), Connect(PEER:PP); the
//	                 ErrConnectStarted of a non-blocking connect is "ok"
//	accept           Accept(): "accepted" and the listener is closed, or
//	                 "errno EAGAIN" (ErrWouldBlock)
//	send HEX         Write(): "ok N"
//	recv             Read(): "data HEX"; "eof" (ErrClosedForReceive);
//	                 "errno EAGAIN" (ErrWouldBlock); "errno NAME"
//	shutdown         Shutdown(tcpip.ShutdownWrite)
//	close            Close()
//	abort            SO_LINGER {on, 0} (tcpip.LingerOption) then Close():
//	                 RST in SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1/2 and
//	                 CLOSE-WAIT, as Linux does
//	wait             nothing to do: timers run in real time
//	quit / EOF       exit 0
//
// tcpip.Error types are mapped to the C errno names the way gVisor's
// own sentry does (pkg/syserr/netstack.go).
//
// Stack options, each a user-visible choice made for a deterministic and
// simple oracle (docs/stacks/gvisor.md):
//
//   - SACK off (tcpip.TCPSACKEnabled, the default made explicit);
//   - RACK loss detection and tail loss probes off (tcpip.TCPRecovery 0);
//   - receive buffer auto-tuning off (TCPModerateReceiveBufferOption);
//   - Nagle off (TCPDelayEnabled false and the endpoint's delay option),
//     so every send() leaves at once, as TCP_NODELAY on Linux;
//   - reno congestion control (the default made explicit);
//   - 3 data retransmissions before giving up (TCPMaxRetriesOption, as the
//     fuzzer's shared retry limit and tcp_retries2=3 on the linux target);
//   - no rate limit on out-of-window and challenge ACKs
//     (stack.TCPInvalidRateLimitOption 0, default 500 ms; Linux's
//     tcp_invalid_ratelimit=0 on the linux target): every unacceptable
//     segment is answered, as RFC 9293 says.
//
// Quirks handled:
//
//   - gVisor processes segments on its own goroutines: the stack answers an
//     injected segment within microseconds but not within the write.
//   - Close() on an endpoint in CLOSE (after a RST) must not be repeated, and
//     Abort() on an endpoint that is gone could release its port twice: the
//     shim remembers what it closed and aborts only live endpoints.
//   - SYN retransmissions are not configurable in this gVisor version
//     (TCPSynRetriesOption is stored but unused): 1, 2, 4, 8, 16, 32 s.
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const (
	nicID   = 1
	mtu     = 1500
	backlog = 8
)

// sock is one endpoint the shim made (or accepted) since the last reset.
type sock struct {
	ep     tcpip.Endpoint
	closed bool // Close() was called: never call it again
}

type agent struct {
	stack    *stack.Stack
	local    tcpip.Address
	peer     tcpip.Address
	listener *sock
	conn     *sock
	all      []*sock
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gvisor_agent: "+format+"\n", args...)
}

func ipv4Addr(env, fallback string) tcpip.Address {
	text := os.Getenv(env)
	if text == "" {
		text = fallback
	}
	ip := net.ParseIP(text).To4()
	if ip == nil {
		logf("%s=%q is not an IPv4 address", env, text)
		os.Exit(2)
	}
	return tcpip.Address(ip)
}

func must(what string, err tcpip.Error) {
	if err != nil {
		logf("%s: %s", what, err)
		os.Exit(2)
	}
}

func newAgent(fd int) *agent {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	sack := tcpip.TCPSACKEnabled(false)
	must("SACK off", s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack))
	recovery := tcpip.TCPRecovery(0)
	must("RACK off", s.SetTransportProtocolOption(tcp.ProtocolNumber, &recovery))
	moderate := tcpip.TCPModerateReceiveBufferOption(false)
	must("auto-tuning off", s.SetTransportProtocolOption(tcp.ProtocolNumber, &moderate))
	delay := tcpip.TCPDelayEnabled(false)
	must("Nagle off", s.SetTransportProtocolOption(tcp.ProtocolNumber, &delay))
	cc := tcpip.CongestionControlOption("reno")
	must("reno", s.SetTransportProtocolOption(tcp.ProtocolNumber, &cc))
	retries := tcpip.TCPMaxRetriesOption(3)
	must("retries", s.SetTransportProtocolOption(tcp.ProtocolNumber, &retries))
	must("no ACK rate limit", s.SetOption(stack.TCPInvalidRateLimitOption(0)))

	link, err := fdbased.New(&fdbased.Options{
		FDs:                []int{fd},
		MTU:                mtu,
		EthernetHeader:     false,
		PacketDispatchMode: fdbased.RecvMMsg,
		ClosedFunc: func(err tcpip.Error) {
			logf("packet socket closed: %v", err)
		},
	})
	if err != nil {
		logf("fdbased: %v", err)
		os.Exit(2)
	}
	must("CreateNIC", s.CreateNIC(nicID, link))
	a := &agent{
		stack: s,
		local: ipv4Addr("SYNACK_LOCAL", "198.18.0.1"),
		peer:  ipv4Addr("SYNACK_PEER", "198.18.0.2"),
	}
	must("AddProtocolAddress", s.AddProtocolAddress(nicID, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: a.local, PrefixLen: 15},
	}, stack.AddressProperties{}))
	subnet, serr := tcpip.NewSubnet(
		tcpip.Address(net.IPv4(198, 18, 0, 0).To4()),
		tcpip.AddressMask(net.CIDRMask(15, 32)))
	if serr != nil {
		logf("subnet: %v", serr)
		os.Exit(2)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: nicID}})
	return a
}

// errno names a tcpip.Error the way gVisor's sentry maps it (pkg/syserr).
func errno(err tcpip.Error) string {
	switch err.(type) {
	case *tcpip.ErrWouldBlock, *tcpip.ErrNoPortAvailable:
		return "EAGAIN"
	case *tcpip.ErrClosedForSend, *tcpip.ErrAborted:
		return "EPIPE"
	case *tcpip.ErrNotConnected:
		return "ENOTCONN"
	case *tcpip.ErrConnectionReset:
		return "ECONNRESET"
	case *tcpip.ErrConnectionRefused:
		return "ECONNREFUSED"
	case *tcpip.ErrConnectionAborted:
		return "ECONNABORTED"
	case *tcpip.ErrTimeout:
		return "ETIMEDOUT"
	case *tcpip.ErrConnectStarted:
		return "EINPROGRESS"
	case *tcpip.ErrAlreadyConnecting:
		return "EALREADY"
	case *tcpip.ErrAlreadyConnected:
		return "EISCONN"
	case *tcpip.ErrPortInUse:
		return "EADDRINUSE"
	case *tcpip.ErrBadLocalAddress:
		return "EADDRNOTAVAIL"
	case *tcpip.ErrNetworkUnreachable:
		return "ENETUNREACH"
	case *tcpip.ErrHostUnreachable:
		return "EHOSTUNREACH"
	case *tcpip.ErrMessageTooLong:
		return "EMSGSIZE"
	case *tcpip.ErrNoBufferSpace:
		return "ENOBUFS"
	case *tcpip.ErrNotSupported:
		return "EOPNOTSUPP"
	case *tcpip.ErrNotPermitted:
		return "EPERM"
	case *tcpip.ErrBadBuffer:
		return "EFAULT"
	case *tcpip.ErrDestinationRequired:
		return "EDESTADDRREQ"
	default: // ErrInvalidEndpointState, ErrAlreadyBound, ErrInvalidOptionValue, ...
		return "EINVAL"
	}
}

func (a *agent) newSock() (*sock, tcpip.Error) {
	var wq waiter.Queue
	ep, err := a.stack.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if err != nil {
		return nil, err
	}
	ep.SocketOptions().SetReuseAddress(true)
	ep.SocketOptions().SetDelayOption(false)
	s := &sock{ep: ep}
	a.all = append(a.all, s)
	return s, nil
}

func (a *agent) closeSock(s *sock) {
	if s != nil && !s.closed {
		s.closed = true
		s.ep.Close()
	}
}

// abortSock makes s forget its connection at once: a RST where there is one.
func (a *agent) abortSock(s *sock) {
	switch tcp.EndpointState(s.ep.State()) {
	case tcp.StateClose, tcp.StateError:
		// Gone already (a RST, a timeout, or closed in CLOSED).
	default:
		// Abort() resets a connected endpoint (TIME-WAIT and LAST-ACK too)
		// and closes one that is not (listening, connecting, bound).
		s.ep.Abort()
	}
	if !s.closed {
		s.closed = true
		s.ep.Close()
	}
}

func (a *agent) reset() string {
	for _, s := range a.all {
		a.abortSock(s)
	}
	a.all, a.listener, a.conn = nil, nil, nil
	return "ok"
}

func port(arg string) (uint16, error) {
	n, err := strconv.ParseUint(arg, 10, 16)
	return uint16(n), err
}

func (a *agent) listen(args []string) string {
	p, perr := port(args[0])
	if perr != nil {
		return "error bad port " + args[0]
	}
	s, err := a.newSock()
	if err != nil {
		return "errno " + errno(err)
	}
	if err = s.ep.Bind(tcpip.FullAddress{NIC: nicID, Addr: a.local, Port: p}); err == nil {
		err = s.ep.Listen(backlog)
	}
	if err != nil {
		a.closeSock(s)
		return "errno " + errno(err)
	}
	a.listener = s
	return "ok"
}

func (a *agent) connect(args []string) string {
	p, perr := port(args[0])
	pp, pperr := port(args[1])
	if perr != nil || pperr != nil {
		return "error bad port"
	}
	s, err := a.newSock()
	if err != nil {
		return "errno " + errno(err)
	}
	if err = s.ep.Bind(tcpip.FullAddress{NIC: nicID, Addr: a.local, Port: p}); err == nil {
		err = s.ep.Connect(tcpip.FullAddress{NIC: nicID, Addr: a.peer, Port: pp})
	}
	switch err.(type) {
	case nil, *tcpip.ErrConnectStarted:
		a.conn = s
		return "ok"
	}
	a.closeSock(s)
	return "errno " + errno(err)
}

func (a *agent) accept() string {
	if a.conn != nil {
		return "accepted"
	}
	if a.listener == nil {
		return "errno EINVAL"
	}
	ep, _, err := a.listener.ep.Accept(nil)
	if err != nil {
		return "errno " + errno(err)
	}
	ep.SocketOptions().SetDelayOption(false)
	s := &sock{ep: ep}
	a.all = append(a.all, s)
	a.conn = s
	// The model's passive OPEN is one TCB that becomes the connection.
	a.closeSock(a.listener)
	a.listener = nil
	return "accepted"
}

func (a *agent) send(args []string) string {
	if a.conn == nil || a.conn.closed {
		return "errno ENOTCONN"
	}
	data := []byte{}
	if len(args) > 0 {
		var derr error
		if data, derr = hex.DecodeString(args[0]); derr != nil {
			return "error bad hex"
		}
	}
	n, err := a.conn.ep.Write(bytes.NewReader(data), tcpip.WriteOptions{})
	if err != nil {
		return "errno " + errno(err)
	}
	return "ok " + strconv.FormatInt(n, 10)
}

func (a *agent) recv() string {
	if a.conn == nil || a.conn.closed {
		return "errno ENOTCONN"
	}
	var buf bytes.Buffer
	res, err := a.conn.ep.Read(&buf, tcpip.ReadOptions{})
	switch err.(type) {
	case nil:
		if res.Count == 0 {
			return "errno EAGAIN"
		}
		return "data " + hex.EncodeToString(buf.Bytes()[:res.Count])
	case *tcpip.ErrClosedForReceive:
		return "eof"
	}
	return "errno " + errno(err)
}

func (a *agent) shutdown() string {
	if a.conn == nil || a.conn.closed {
		return "errno ENOTCONN"
	}
	if err := a.conn.ep.Shutdown(tcpip.ShutdownWrite); err != nil {
		return "errno " + errno(err)
	}
	return "ok"
}

func (a *agent) closeCall(abort bool) string {
	s := a.conn
	if s == nil {
		s = a.listener
	}
	if s == nil || s.closed {
		return "ok"
	}
	if abort {
		s.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true, Timeout: 0})
	}
	a.closeSock(s)
	return "ok"
}

func (a *agent) command(words []string) string {
	name, args := words[0], words[1:]
	need := map[string]int{"listen": 1, "connect": 2}
	if len(args) < need[name] {
		return "error " + name + ": missing arguments"
	}
	switch name {
	case "reset":
		return a.reset()
	case "listen":
		return a.listen(args)
	case "connect":
		return a.connect(args)
	case "accept":
		return a.accept()
	case "send":
		return a.send(args)
	case "recv":
		return a.recv()
	case "shutdown":
		return a.shutdown()
	case "close":
		return a.closeCall(false)
	case "abort":
		return a.closeCall(true)
	case "wait":
		return "ok" // real time: the stack's timers fire by themselves
	}
	return "error unknown command " + name
}

func main() {
	fdText := os.Getenv("SYNACK_PACKET_FD")
	if fdText == "" {
		logf("SYNACK_PACKET_FD is not set (run it through synack)")
		os.Exit(2)
	}
	fd, ferr := strconv.Atoi(fdText)
	if ferr != nil {
		logf("SYNACK_PACKET_FD=%q is not a file descriptor", fdText)
		os.Exit(2)
	}
	a := newAgent(fd)
	out := bufio.NewWriter(os.Stdout)
	traits := "exact_windows=0 user_outputs=0 spontaneous_timers=1 calls_in_any_state=0" +
		" holds_out_of_order=1 slow_waits=1 keeps_listener=0 congestion_control=1"
	fmt.Fprintf(out, "synack-agent 1 name=gvisor %s\n", traits)
	out.Flush()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<16), 1<<24)
	for in.Scan() {
		words := strings.Fields(in.Text())
		if len(words) == 0 {
			continue
		}
		if len(words) == 1 && words[0] == "quit" {
			break
		}
		fmt.Fprintln(out, a.command(words))
		out.Flush()
	}
	if err := in.Err(); err != nil {
		logf("stdin: %v", err)
	}
	a.reset()
}
