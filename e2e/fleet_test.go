package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions/redisstore/redistest"
	"github.com/doorward/doorward/e2e/netns"
)

// The fleet tests run whole knockd daemons, each in its own pair of
// network namespaces, that share one real redis-server (docs/fleet.md):
// what a real client spends on one host must be spent on all of them, the
// counters conditions read must count every host's knocks, and an outage
// of Redis must fail knocks closed while open doors still close on time.
// The unix socket of redistest lives in a temporary folder, which every
// namespace sees: namespaces share the file system, not the network.

// fleetConf is every host's config: one door of each protocol that spends
// shared state, each opening TCP 2222 for Cmd_Timeout seconds. %[1]s is
// the Redis URL, %[2]s the host's own folder (its copy of the one-time
// sequences, its guest list), %[3]s the fleet's folder (what must be the
// same path on every host: the hash archive names its space).
const fleetConf = `[options]
	State        = %[1]s
	State_Prefix = fleet:

[otp]
	One_Time_Sequences = %[2]s/otp.seq
	Seq_Timeout   = 5
	TCPFlags      = syn
	Start_Command = iptables -w -I INPUT -s %%IP%% -p tcp --dport 2222 -j ACCEPT
	Cmd_Timeout   = %[4]d
	Stop_Command  = iptables -w -D INPUT -s %%IP%% -p tcp --dport 2222 -j ACCEPT

[rotating]
	Rotating_Secret = %[3]s/rotating.secret
	Rotating_Ports  = 20000-32000
	Rotating_Length = 4
	Rotating_Period = 30
	Rotating_Skew   = 1
	Seq_Timeout     = 5
	TCPFlags        = syn
	Start_Command   = iptables -w -I INPUT -s %%IP%% -p tcp --dport 2222 -j ACCEPT
	Cmd_Timeout     = %[4]d
	Stop_Command    = iptables -w -D INPUT -s %%IP%% -p tcp --dport 2222 -j ACCEPT

[doorman]
	Type         = doorman
	Port         = 1001
	Guestlist    = %[2]s/guestlist
	Firewall_Add = %[3]s/add
	Firewall_Del = %[3]s/delete
	Hash_Archive = %[3]s/doorman.hash
	Waitfor      = %[4]d
	LogLevel     = debug

[spa]
	Type              = fwknop
	SOURCE            = ANY
	KEY_BASE64        = %[5]s
	HMAC_KEY_BASE64   = %[6]s
	OPEN_PORTS        = tcp/2222
	FW_ACCESS_TIMEOUT = %[4]d

[span]
	Type     = knockdaemon
	Portspan = 40000-40255
	Knock    = IP,PORT,FLAG0,CHECKSUM
	Key      = fleet secret phrase
	IV       = yes

[throttle]
	Type      = action
	Condition = PORT == 2222 && state(IP,visits,num) < 2
	State     = state(IP,visits,num)++
	System    = iptables -w -I INPUT -p tcp -s IP/32 --dport PORT -j ACCEPT
`

// fleetCmdTimeout is every door's Cmd_Timeout (and doorman's Waitfor).
const fleetCmdTimeout = 3

// otpLines is each host's copy of the one-time sequences: the same lines,
// the same base name (the name of their shared space), another folder.
const otpLines = "7101,8101,9101\n7102,8102,9102\n7103,8103,9103\n"

// throttled is the address span knocks ask to open: the same on every
// host, so the throttle's counter state(IP,visits,num) is one.
const throttled = "192.0.2.7"

// fleetHost is one guarded host: its namespace pair and its knockd.
type fleetHost struct {
	name string
	p    *netns.Pair
	k    *knockd
	dir  string
}

// fleet is n hosts sharing one redis-server.
type fleet struct {
	redis  *redistest.Server
	hosts  []*fleetHost
	shared string
}

// newFleet starts redis-server and n daemons, named A, B, ….
func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	netns.Require(t, "ip", "iptables", "knock", "sendip", "fwknop", "redis-server")
	f := &fleet{redis: redistest.Start(t), shared: t.TempDir()}
	if err := os.WriteFile(filepath.Join(f.shared, "rotating.secret"), []byte(rotatingSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The scripts as an admin installs them: root's, mode 0700.
	for _, op := range []string{"add", "delete"} {
		src, err := os.ReadFile(example("doorman/iptables_" + op))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.shared, op), src, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		f.hosts = append(f.hosts, &fleetHost{name: string(rune('A' + i)), p: netns.NewPair(t), dir: t.TempDir()})
	}
	// A guest may knock from any host's client (a replay comes from the
	// address the knock was sniffed from).
	var clients []string
	for _, h := range f.hosts {
		clients = append(clients, h.p.ClientAddr.String())
	}
	guests := fmt.Sprintf("martink %s %d\n\t%s\n", dmSecret, servicePort, strings.Join(clients, "\n\t"))
	for _, h := range f.hosts {
		for name, text := range map[string]string{"otp.seq": otpLines, "guestlist": guests} {
			if err := os.WriteFile(filepath.Join(h.dir, name), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		conf := confFile(t, fmt.Sprintf(fleetConf, f.redis.URL(), h.dir, f.shared, fleetCmdTimeout, fwSSH.key, fwSSH.hmac))
		h.k = startKnockd(t, h.p, conf)
	}
	return f
}

// rules lists the sources TCP 2222 is open for on h.
func (h *fleetHost) rules(t *testing.T) []string {
	t.Helper()
	return h.p.IPTablesSources(t, false, servicePort)
}

// waitRules waits until h opens TCP 2222 for exactly want.
func (h *fleetHost) waitRules(t *testing.T, want []string, d time.Duration) {
	t.Helper()
	iptablesGuard.waitAllowed(t, h.p, false, want, d)
}

// knock sends a port sequence to h with Debian's knock.
func (h *fleetHost) knock(t *testing.T, ports ...string) {
	t.Helper()
	debianKnock(nil, ports...)(t, h.p, h.p.ServerAddr)
}

// udp sends payload to h's port in one datagram from src, through sendip:
// the same bytes, from the same address, whichever host it was sniffed on.
func (h *fleetHost) udp(t *testing.T, src netip.Addr, port int, payload string) {
	t.Helper()
	dst := h.p.ServerAddr.String()
	h.p.MustExec(t, h.p.Client, "sendip", "-p", "ipv4", "-is", src.String(), "-id", dst,
		"-p", "udp", "-us", "40000", "-ud", strconv.Itoa(port), "-d", payload, dst)
}

// span sends a knockdaemon port-span knock with our client, for the
// throttled address (each knock a fresh ciphertext: a random IV).
func (h *fleetHost) span(t *testing.T) {
	t.Helper()
	h.p.MustExec(t, h.p.Client, knockBin, "span", "-remote", h.p.ServerAddr.String(), "-client", throttled,
		"-port", strconv.Itoa(servicePort), "-flag0", "1", "-knock", "IP,PORT,FLAG0,CHECKSUM",
		"-portspan", "40000-40255", "-key", "fleet secret phrase", "-iv", "yes")
}

// spaPacket has the real fwknop client build an SPA packet for TCP 2222,
// opening for the packet's source, without sending it.
func spaPacket(t *testing.T, p *netns.Pair) string {
	t.Helper()
	s := &fwServer{p: p}
	return string(s.packet(t, fwSSH, "-A", "tcp/2222", "-s", "-D", p.ServerAddr.String()))
}

// rotatingPorts is the rotating door's current sequence, as knock
// rotating --show prints it for any client.
func (f *fleet) rotatingPorts(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command(knockBin, "rotating", "--show", "--secret", filepath.Join(f.shared, "rotating.secret"),
		"--ports", "20000-32000", "rotating").Output()
	if err != nil {
		t.Fatalf("knock rotating --show: %v", err)
	}
	return strings.Fields(string(out))
}

// noOpen fails t if h opened anything since its start.
func (h *fleetHost) noOpen(t *testing.T) {
	t.Helper()
	for _, opened := range []string{"OPEN SESAME", "was valid.", "SPA accepted", "running command"} {
		if l := h.k.lines(opened); len(l) > 0 {
			t.Errorf("host %s opened: %q", h.name, l)
		}
	}
	if got := h.rules(t); len(got) != 0 {
		t.Errorf("host %s: TCP 2222 open for %q", h.name, got)
	}
}

// TestFleetDoormanReplay: a doorman knock accepted by A, sent again to B
// with the same bytes from the same address, is a replay on B.
func TestFleetDoormanReplay(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	a, b := f.hosts[0], f.hosts[1]
	src := a.p.ClientAddr
	knock := dmPayload(servicePort, "martink", "5150515051", dmSecret)

	a.udp(t, src, dmKnockPort, knock)
	a.k.waitLog("doorman: debug: knock from "+src.String()+" was valid.", 5*time.Second)
	a.waitRules(t, []string{src.String()}, 3*time.Second)

	b.udp(t, src, dmKnockPort, knock)
	b.k.waitLog("doorman: warn: PROBABLE REPLAY ATTEMPT from "+src.String()+": port=2222 guest=martink tag=5150515051", 5*time.Second)
	b.noOpen(t)
}

// TestFleetOneTimeSequence: a one-time sequence used on A does not open
// B, which moves on to the next line by itself and opens for that.
func TestFleetOneTimeSequence(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	a, b := f.hosts[0], f.hosts[1]

	a.knock(t, "7101", "8101", "9101")
	a.k.waitLog(a.p.ClientAddr.String()+": otp: OPEN SESAME", 5*time.Second)
	a.waitRules(t, []string{a.p.ClientAddr.String()}, 2*time.Second)

	// Whether B's once-a-second look at Redis comes before the knock or
	// the knock's Spend finds the line spent, the line does not open B.
	b.knock(t, "7101", "8101", "9101")
	b.k.waitLog("otp: one-time sequences file "+b.dir+"/otp.seq changed, now expecting 7102:tcp,8102:tcp,9102:tcp", 5*time.Second)
	time.Sleep(300 * time.Millisecond) // the knock's last packets
	b.noOpen(t)

	cli := b.p.ClientAddr.String()
	b.knock(t, "7102", "8102", "9102")
	b.k.waitLog(cli+": otp: OPEN SESAME", 5*time.Second)
	b.waitRules(t, []string{cli}, 2*time.Second)
}

// TestFleetFwknopReplay: an SPA packet of the real fwknop client accepted
// by A is a replay on B, sent with the same bytes from the same address.
func TestFleetFwknopReplay(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	a, b := f.hosts[0], f.hosts[1]
	src := a.p.ClientAddr.String()
	spa := spaPacket(t, a.p)

	a.udp(t, a.p.ClientAddr, 62201, spa)
	a.k.waitLog("spa: ["+src+"] (stanza #1) SPA accepted: opening tcp/2222 for "+src, 5*time.Second)

	b.udp(t, a.p.ClientAddr, 62201, spa)
	b.k.waitLog("spa: ["+src+"] (stanza #1) Replay detected from source IP: "+src, 5*time.Second)
	b.noOpen(t)
}

// TestFleetThrottle: a throttle of two openings per address counts the
// knocks of both hosts: one on A and one on B open, the third is refused
// on either.
func TestFleetThrottle(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	a, b := f.hosts[0], f.hosts[1]
	opened := throttled + ": span: action throttle: running command: "
	skipped := throttled + ": span: action throttle: condition false, skipped"

	a.span(t)
	a.k.waitLog(opened, 5*time.Second)
	a.waitRules(t, []string{throttled}, 2*time.Second)
	b.span(t)
	b.k.waitLog(opened, 5*time.Second)
	b.span(t)
	b.k.waitLog(skipped, 5*time.Second)
	a.span(t)
	a.k.waitLog(skipped, 5*time.Second)
	for _, h := range f.hosts {
		if n := h.k.count(opened); n != 1 {
			t.Errorf("host %s opened %d times, want 1", h.name, n)
		}
		h.waitRules(t, []string{throttled}, 0)
	}
}

// TestFleetRotating: a rotating door's window spent on A (Debian's knock
// fed knock rotating --show) does not open B in the same window.
func TestFleetRotating(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	a, b := f.hosts[0], f.hosts[1]
	ports := f.rotatingPorts(t)

	a.knock(t, ports...)
	a.k.waitLog(a.p.ClientAddr.String()+": rotating: OPEN SESAME", 5*time.Second)
	a.waitRules(t, []string{a.p.ClientAddr.String()}, 2*time.Second)

	// Within Rotating_Skew, B accepts the window even if the next one has
	// begun: it is refused as spent, not as an unknown sequence.
	b.knock(t, ports...)
	b.k.waitLog(b.p.ClientAddr.String()+": rotating: the rotating sequence of window ", 5*time.Second)
	b.noOpen(t)
}

// knockAll sends h one fresh knock of every protocol from its client,
// the one-time door's line given: each needs the shared state to open.
func (f *fleet) knockAll(t *testing.T, h *fleetHost, tag string, otp ...string) {
	t.Helper()
	h.knock(t, otp...)
	h.knock(t, f.rotatingPorts(t)...)
	h.udp(t, h.p.ClientAddr, dmKnockPort, dmPayload(servicePort, "martink", tag, dmSecret))
	h.udp(t, h.p.ClientAddr, 62201, spaPacket(t, h.p))
	h.span(t)
}

// TestFleetRedisDown kills redis-server while a door is open on A: the
// door still closes on time (A's own journal), every protocol's knock is
// refused on both hosts with one log line per host for the outage, not
// one per knock; once redis-server is back, the same daemons open doors
// again.
func TestFleetRedisDown(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	a, b := f.hosts[0], f.hosts[1]
	cliA, cliB := a.p.ClientAddr.String(), b.p.ClientAddr.String()

	a.knock(t, "7101", "8101", "9101")
	a.k.waitLog(cliA+": otp: OPEN SESAME", 5*time.Second)
	opened := time.Now()
	a.waitRules(t, []string{cliA}, 2*time.Second)

	// Counted from before the kill: a daemon with a door group's
	// subscription open learns of the outage at once, not at the next knock.
	before := map[*fleetHost]int{a: len(a.k.lines("")), b: len(b.k.lines(""))}
	f.redis.Kill()
	f.knockAll(t, a, "1111111111", "7102", "8102", "9102")
	f.knockAll(t, b, "2222222222", "7101", "8101", "9101")
	f.knockAll(t, b, "3333333333", "7101", "8101", "9101")

	a.k.waitLog(cliA+": otp: command timeout", (fleetCmdTimeout+2)*time.Second)
	a.waitRules(t, nil, 2*time.Second)
	if d := time.Since(opened); d > (fleetCmdTimeout+2)*time.Second {
		t.Errorf("the door open when Redis went closed %v after it opened, want Cmd_Timeout %ds", d.Round(time.Millisecond), fleetCmdTimeout)
	}
	// What may be logged while Redis is down: the outage, once; the
	// protocols' lines for every packet as ever (a sequence's stages,
	// doorman's "knock from"); A's door closing.
	quiet := []string{": Stage ", "doorman: info: knock from ", cliA + ": otp: command timeout",
		"otp: running command: iptables -w -D INPUT -s " + cliA + " "}
	for _, h := range f.hosts {
		out := h.k.lines("")[before[h]:]
		outage := 0
		for _, l := range out {
			switch {
			case strings.HasPrefix(l, "state: redis "+f.redis.URL()+" unreachable, refusing knocks that need shared state until it answers: "):
				outage++
			case !slices.ContainsFunc(quiet, func(q string) bool { return strings.Contains(l, q) }):
				t.Errorf("host %s logged while Redis was down: %s", h.name, l)
			}
		}
		if outage != 1 {
			t.Errorf("host %s logged the outage %d times, want once", h.name, outage)
		}
	}
	b.noOpen(t)

	// The same daemons, once redis-server answers again (empty: it kept
	// nothing), open for every protocol.
	f.redis.Restart()
	for _, h := range f.hosts {
		h.k.waitLog("state: redis "+f.redis.URL()+" answers again", 5*time.Second)
	}
	f.knockAll(t, b, "4444444444", "7101", "8101", "9101")
	for _, want := range []string{
		cliB + ": otp: OPEN SESAME",
		cliB + ": rotating: OPEN SESAME",
		"doorman: debug: knock from " + cliB + " was valid.",
		"spa: [" + cliB + "] (stanza #1) SPA accepted: opening tcp/2222 for " + cliB,
		throttled + ": span: action throttle: running command: ",
	} {
		b.k.waitLog(want, 5*time.Second)
	}
	b.waitRules(t, []string{cliB, cliB, cliB, throttled}, 3*time.Second)
}
