package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/doorward/doorward/formats/nftset"
	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// recordDial is a fake netlink socket: it acknowledges every message and
// records each batch's messages as text (type, family, table, set, and
// per element its key and timeout), so the messages a door sends are
// checked without a kernel.
func recordDial(got *[]string) func() (*nftables.Conn, error) {
	ack := []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 4)}}
	return func() (*nftables.Conn, error) {
		return nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
			for _, m := range req {
				if s := describe(m); s != "" {
					*got = append(*got, s)
				}
			}
			return ack, nil
		}))
	}
}

func describe(m netlink.Message) string {
	var op string
	switch m.Header.Type & 0xff {
	case unix.NFT_MSG_NEWSETELEM:
		op = "newsetelem"
	case unix.NFT_MSG_DELSETELEM:
		op = "delsetelem"
	default:
		return "" // batch begin and end
	}
	s := fmt.Sprintf("%s family=%d", op, m.Data[0])
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return err.Error()
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_SET_TABLE:
			s += " table=" + ad.String()
		case unix.NFTA_SET_NAME:
			s += " set=" + ad.String()
		case unix.NFTA_SET_ELEM_LIST_ELEMENTS:
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					list.Nested(func(el *netlink.AttributeDecoder) error {
						for el.Next() {
							switch el.Type() {
							case unix.NFTA_SET_ELEM_KEY:
								el.Nested(func(k *netlink.AttributeDecoder) error {
									for k.Next() {
										s += fmt.Sprintf(" key=%x", k.Bytes())
									}
									return nil
								})
							case unix.NFTA_SET_ELEM_TIMEOUT:
								s += fmt.Sprintf(" timeout=%dms", binary.BigEndian.Uint64(el.Bytes()))
							}
						}
						return nil
					})
				}
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		return err.Error()
	}
	return s
}

func TestMessages(t *testing.T) {
	v4 := nftset.Ref{Family: "inet", Table: "filter", Set: "doorward4"}
	port6 := nftset.Ref{Family: "ip6", Table: "fw", Set: "ssh6", Port: 22}
	a4, a6 := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")
	tests := []struct {
		name string
		op   func(b *Backend) error
		want []string
	}{
		{"add refreshes in one batch", func(b *Backend) error { return b.Add(v4, a4, 3*time.Second) }, []string{
			"newsetelem family=1 set=doorward4 table=filter key=c0000207 timeout=3000ms",
			"delsetelem family=1 set=doorward4 table=filter key=c0000207",
			"newsetelem family=1 set=doorward4 table=filter key=c0000207 timeout=3000ms",
		}},
		{"delete", func(b *Backend) error { return b.Delete(v4, a4) }, []string{
			"delsetelem family=1 set=doorward4 table=filter key=c0000207",
		}},
		{"address . port", func(b *Backend) error { return b.Add(port6, a6, time.Minute) }, []string{
			"newsetelem family=10 set=ssh6 table=fw key=20010db800000000000000000000000700160000 timeout=60000ms",
			"delsetelem family=10 set=ssh6 table=fw key=20010db800000000000000000000000700160000",
			"newsetelem family=10 set=ssh6 table=fw key=20010db800000000000000000000000700160000 timeout=60000ms",
		}},
		{"no timeout refused", func(b *Backend) error {
			if err := b.Add(v4, a4, 0); err == nil {
				return fmt.Errorf("Add with timeout 0 succeeded")
			}
			return nil
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			b, err := open(recordDial(&got))
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.op(b); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("messages:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestReconnect: a socket that fails (here every receive: EBADF, as on a
// socket the kernel or a namespace teardown closed) is replaced once and
// the operation repeated on the new one.
func TestReconnect(t *testing.T) {
	var got []string
	ok := recordDial(&got)
	dials := 0
	b, err := open(func() (*nftables.Conn, error) {
		dials++
		if dials == 1 {
			return nftables.New(nftables.WithTestDial(func([]netlink.Message) ([]netlink.Message, error) {
				return nil, unix.EBADF
			}))
		}
		return ok()
	})
	if err != nil {
		t.Fatal(err)
	}
	v4 := nftset.Ref{Family: "ip", Table: "fw", Set: "d4"}
	if err := b.Delete(v4, netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatalf("Delete over a broken socket: %v", err)
	}
	if want := []string{"delsetelem family=2 set=d4 table=fw key=c0000201"}; dials != 2 || !slices.Equal(got, want) {
		t.Errorf("%d dials, messages %q; want 2 dials, %q", dials, got, want)
	}
}
