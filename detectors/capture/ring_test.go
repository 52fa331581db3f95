//go:build linux

package capture

import (
	"encoding/binary"
	"go/build"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOwnImportsOnly keeps the capture from reaching into a dependency's
// unexported state (it read gopacket afpacket's socket descriptor by
// reflection): the ring is ours, built on x/sys/unix alone.
func TestOwnImportsOnly(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if imp == "reflect" || strings.HasPrefix(imp, "github.com/gopacket/") {
			t.Errorf("capture imports %s; the packet socket and its ring are the package's own", imp)
		}
	}
}

// testFrame is one frame to lay out in a fake block, and what next yields.
type testFrame struct {
	Data      string
	Sec, Nsec uint32
	Ifindex   int32
	PktType   uint8
}

// fakeBlock lays frames out as the kernel does in a TPACKET_V3 block:
// block header, then each frame's tpacket3_hdr, sockaddr_ll and data at
// tp_net, the next frame TPACKET_ALIGN'ed after it. edit may corrupt the
// result.
func fakeBlock(frames []testFrame, edit func(b []byte)) []byte {
	const size = 4096
	b := make([]byte, size)
	ne := binary.NativeEndian
	ne.PutUint32(b[blkStatus:], unix.TP_STATUS_USER)
	ne.PutUint32(b[blkNumPkts:], uint32(len(frames)))
	ne.PutUint32(b[blkFirstPkt:], blkHeaderSize)
	off := blkHeaderSize
	for i, f := range frames {
		layFrame(b[off:], []byte(f.Data), f.Sec, f.Nsec, f.Ifindex, f.PktType)
		if i < len(frames)-1 {
			ne.PutUint32(b[off+tpNextOffset:], uint32(frameStep(len(f.Data))))
			off += frameStep(len(f.Data))
		}
	}
	if edit != nil {
		edit(b)
	}
	return b
}

func TestBlockWalk(t *testing.T) {
	ne := binary.NativeEndian
	three := []testFrame{
		{"first", 1, 2, 3, unix.PACKET_HOST},
		{"second, longer than the alignment", 4, 5, 6, unix.PACKET_OUTGOING},
		{"", 7, 8, 9, unix.PACKET_BROADCAST},
	}
	frame0 := blkHeaderSize
	for _, tc := range []struct {
		name   string
		frames []testFrame
		edit   func(b []byte)
		want   []testFrame
	}{
		{"three frames", three, nil, three},
		{"empty block", nil, nil, nil},
		{"first frame offset in the header", three, func(b []byte) { ne.PutUint32(b[blkFirstPkt:], 8) }, nil},
		{"first frame offset past the block", three, func(b []byte) { ne.PutUint32(b[blkFirstPkt:], 1<<20) }, nil},
		{"header cut by the block's end", three, func(b []byte) { ne.PutUint32(b[blkFirstPkt:], 4096-tpMinFrame+1) }, nil},
		{"data past the block", three, func(b []byte) { ne.PutUint32(b[frame0+tpSnaplen:], 4096) }, nil},
		{"net offset past the block", three, func(b []byte) { ne.PutUint16(b[frame0+tpNet:], 0xffff) }, nil},
		{"more frames counted than linked", three, func(b []byte) { ne.PutUint32(b[blkNumPkts:], 5) }, three},
		{"next offset zero before the last", three, func(b []byte) { ne.PutUint32(b[frame0+tpNextOffset:], 0) }, three[:1]},
		{"next offset past the block", three, func(b []byte) { ne.PutUint32(b[frame0+tpNextOffset:], 1<<20) }, three[:1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBlock(fakeBlock(tc.frames, tc.edit))
			var got []testFrame
			var f frame
			for b.next(&f) {
				got = append(got, testFrame{string(f.data), f.sec, f.nsec, f.ifindex, f.pktType})
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("frames\n%v\nwant\n%v", got, tc.want)
			}
			if b.next(&f) {
				t.Error("next after the end returned a frame")
			}
		})
	}
}

// TestBlockWalkAllocs keeps the walk of a block allocation-free.
func TestBlockWalkAllocs(t *testing.T) {
	m := fakeBlock([]testFrame{{"a", 1, 2, 3, 0}, {"b", 4, 5, 6, 0}}, nil)
	var f frame
	if n := testing.AllocsPerRun(100, func() {
		b := newBlock(m)
		for b.next(&f) {
		}
	}); n != 0 {
		t.Errorf("walking a block allocates %v times", n)
	}
}
