package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/e2e/netns"
)

// spanConf is a knockdaemon-style config in our INI: one port-span door and
// an action whose System command opens the requested port for the record's
// IP (spec §8's example command, with the e2e service port).
const spanConf = `[span]
	Type     = knockdaemon
	Portspan = %s
	Knock    = IP,PORT,FLAG0,CHECKSUM
	Key      = e2e secret phrase
	IV       = %s
	Protocol = %s

[open]
	Type      = action
	Condition = PORT == %d
	System    = iptables -w -I INPUT -p tcp -s IP/32 --dport PORT -j ACCEPT
`

// TestSpanCapture knocks with our client's span mode from the client
// namespace; the daemon, capturing on the server's veth, decodes the
// encrypted knock and its action adds the iptables rule that lets the
// client reach the service. Variants: a 256-port span with the RandomIV
// header, UDP hits, and a full 32768-port span over two ranges (which the
// capture filter must compile) with a Salted__ header.
func TestSpanCapture(t *testing.T) {
	for _, tc := range []struct {
		name, span, iv, proto string
		clientArgs            []string
	}{
		{"tcp-256", "20000-20255", "yes", "tcp", nil},
		{"udp-256", "20000-20255", "yes", "udp", []string{"-udp"}},
		{"tcp-32768-salted", "20000-36383,40000-56383", "salted", "tcp", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			netns.Require(t, "ip", "nc", "iptables")
			p := netns.NewPair(t)
			p.Firewall(t, netns.IPTables)
			service(t, p, servicePort)
			conf := confFile(t, fmt.Sprintf(spanConf, tc.span, tc.iv, tc.proto, servicePort))
			k := startKnockd(t, p, conf)
			dst, src := p.ServerAddr, p.ClientAddr.String()

			if p.Reachable(t, dst, servicePort) {
				t.Fatalf("service %s reachable before the knock", dst)
			}
			args := append([]string{knockBin, "span", "-remote", dst.String(), "-port", fmt.Sprint(servicePort),
				"-flag0", "1", "-knock", "IP,PORT,FLAG0,CHECKSUM", "-portspan", tc.span,
				"-key", "e2e secret phrase", "-iv", tc.iv, "-v"}, tc.clientArgs...)
			out := p.MustExec(t, p.Client, args...)
			if n := strings.Count(out, "hitting "+tc.proto+" "); n < 8 {
				t.Fatalf("client sent %d hits:\n%s", n, out)
			}

			k.waitLog(src+": span: port-span knock: IP="+src+" PORT=2222 FLAG0=1", 5*time.Second)
			iptablesGuard.waitAllowed(t, p, false, []string{src}, 5*time.Second)
			if err := p.WaitTCP(t, dst, servicePort, true, 3*time.Second); err != nil {
				t.Fatalf("after the knock: %v", err)
			}
			checkCommandsOK(t, k)
			if n := len(k.lines("port-span knock:")); n != 1 {
				t.Errorf("%d knocks decoded, want 1", n)
			}
		})
	}
}
