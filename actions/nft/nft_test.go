package nft

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/formats/nftset"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

func TestKey(t *testing.T) {
	tests := []struct {
		name string
		addr string
		port uint16
		want []byte
	}{
		{"v4", "192.0.2.7", 0, []byte{192, 0, 2, 7}},
		{"v4 port", "192.0.2.7", 22, []byte{192, 0, 2, 7, 0, 22, 0, 0}},
		{"v4 in v6", "::ffff:192.0.2.7", 0, []byte{192, 0, 2, 7}},
		{"v6 port", "2001:db8::1", 443, append(netip.MustParseAddr("2001:db8::1").AsSlice(), 1, 187, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Key(netip.MustParseAddr(tt.addr), tt.port); !bytes.Equal(got, tt.want) {
				t.Fatalf("Key = %v, want %v", got, tt.want)
			}
		})
	}
}

// inNetns runs f on a thread of its own in a new network namespace, so
// the test's tables never touch the host's ruleset; the thread is thrown
// away afterwards (it stays locked).
func inNetns(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root for a network namespace (CI=true: no skipping)")
		}
		t.Skip("needs root for a network namespace")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		f(t)
	}()
	<-done
}

func addTable(t *testing.T, family nftables.TableFamily, name string) *nftables.Conn {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	c.AddTable(&nftables.Table{Name: name, Family: family})
	if err := c.Flush(); err != nil {
		t.Fatalf("add table: %v", err)
	}
	return c
}

// elements lists r's elements as address (and port) → remaining time.
func elements(t *testing.T, c *nftables.Conn, r nftset.Ref, v6 bool) map[string]time.Duration {
	t.Helper()
	es, err := c.GetSetElements(set(r, v6))
	if err != nil {
		t.Errorf("list %s: %v", r, err)
		return nil
	}
	out := map[string]time.Duration{}
	for _, e := range es {
		n := 4
		if v6 {
			n = 16
		}
		a, _ := netip.AddrFromSlice(e.Key[:n])
		k := a.String()
		if len(e.Key) > n {
			k += " . " + strconv.Itoa(int(e.Key[n])<<8|int(e.Key[n+1]))
		}
		out[k] = e.Expires
	}
	return out
}

func TestBackend(t *testing.T) {
	inNetns(t, func(t *testing.T) {
		c := addTable(t, nftables.TableFamilyINet, "filter")
		b, err := Open()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		v4 := nftset.Ref{Family: "inet", Table: "filter", Set: "doorward4"}
		v6 := nftset.Ref{Family: "inet", Table: "filter", Set: "doorward6"}
		port := nftset.Ref{Family: "inet", Table: "filter", Set: "ssh4", Port: 22}
		for _, r := range []struct {
			ref nftset.Ref
			v6  bool
		}{{v4, false}, {v6, true}, {port, false}} {
			if err := b.Ensure(r.ref, r.v6); err != nil {
				t.Fatalf("Ensure %s: %v", r.ref, err)
			}
			if err := b.Ensure(r.ref, r.v6); err != nil {
				t.Fatalf("Ensure %s again: %v", r.ref, err)
			}
		}
		a4, a6 := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")
		for _, step := range []struct {
			ref  nftset.Ref
			addr netip.Addr
		}{{v4, a4}, {v6, a6}, {port, a4}} {
			if err := b.Add(step.ref, step.addr, 3*time.Second); err != nil {
				t.Fatalf("Add %s: %v", step.ref, err)
			}
		}
		got := map[string]time.Duration{}
		for k, v := range elements(t, c, v4, false) {
			got["4 "+k] = v
		}
		for k, v := range elements(t, c, v6, true) {
			got["6 "+k] = v
		}
		for k, v := range elements(t, c, port, false) {
			got["p "+k] = v
		}
		want := []string{"4 192.0.2.7", "6 2001:db8::7", "p 192.0.2.7 . 22"}
		if len(got) != len(want) {
			t.Fatalf("elements %v, want %v", got, want)
		}
		for _, k := range want {
			if left, ok := got[k]; !ok || left <= 2*time.Second || left > 3*time.Second {
				t.Errorf("element %s: %v left (present %v), want (2s, 3s]", k, left, ok)
			}
		}

		// An extension restarts the timeout.
		time.Sleep(1200 * time.Millisecond)
		if err := b.Add(v4, a4, 3*time.Second); err != nil {
			t.Fatalf("Add again: %v", err)
		}
		if left := elements(t, c, v4, false)["192.0.2.7"]; left <= 2500*time.Millisecond {
			t.Errorf("after the extension %v left, want close to 3s", left)
		}

		// Closing deletes; a second close (or one after expiry) is no error.
		for range 2 {
			if err := b.Delete(v4, a4); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		}
		if got := elements(t, c, v4, false); len(got) != 0 {
			t.Errorf("after Delete: %v", got)
		}

		// The kernel expires an element by itself.
		if err := b.Add(v4, a4, time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		if got := elements(t, c, v4, false); len(got) != 0 {
			t.Errorf("1.5 s after a 1 s element: %v", got)
		}

		// The admin reloads a ruleset without the set: the next knock
		// makes it again.
		c.DelSet(set(v4, false))
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := b.Add(v4, a4, 2*time.Second); err != nil {
			t.Fatalf("Add to a deleted set: %v", err)
		}
		if got := elements(t, c, v4, false); len(got) != 1 {
			t.Errorf("after re-creating the set: %v", got)
		}
	})
}

func TestEnsureRefuses(t *testing.T) {
	inNetns(t, func(t *testing.T) {
		c := addTable(t, nftables.TableFamilyIPv4, "fw")
		plain := &nftables.Set{Table: &nftables.Table{Name: "fw", Family: nftables.TableFamilyIPv4}, Name: "notimeout", KeyType: nftables.TypeIPAddr}
		ports := &nftables.Set{Table: plain.Table, Name: "ports", KeyType: nftables.TypeInetService, HasTimeout: true}
		for _, s := range []*nftables.Set{plain, ports} {
			if err := c.AddSet(s, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		b, err := Open()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		tests := []struct {
			name string
			ref  nftset.Ref
			want string
		}{
			{"no table", nftset.Ref{Family: "inet", Table: "filter", Set: "s"}, "table inet filter does not exist"},
			{"no timeout", nftset.Ref{Family: "ip", Table: "fw", Set: "notimeout"}, `no "flags timeout"`},
			{"wrong type", nftset.Ref{Family: "ip", Table: "fw", Set: "ports"}, "has type inet_service, want ipv4_addr"},
		}
		for _, tt := range tests {
			err := b.Ensure(tt.ref, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: Ensure = %v, want an error containing %q", tt.name, err, tt.want)
			}
		}
		// Nothing was created: the tables are the admin's.
		if _, err := c.ListTableOfFamily("filter", nftables.TableFamilyINet); !errors.Is(err, unix.ENOENT) {
			t.Errorf("table inet filter: %v, want it still missing", err)
		}
	})
}
