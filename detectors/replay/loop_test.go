package replay_test

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/replay"
)

// sliceSource yields packets at the given offsets from base, then err
// (io.EOF unless set), without allocating.
type sliceSource struct {
	at  []time.Duration
	i   int
	err error
}

func (s *sliceSource) ReadPacket(p *detectors.Packet) error {
	if s.i == len(s.at) {
		if s.err != nil {
			return s.err
		}
		return io.EOF
	}
	p.Time = base.Add(s.at[s.i])
	p.DstPort = uint16(s.i)
	s.i++
	return nil
}
func (s *sliceSource) Close() error   { return nil }
func (s *sliceSource) String() string { return "slice" }

// TestLoop: the order of the hooks, the tick cadence and the run-out, as
// one trace of every call with the clock it saw.
func TestLoop(t *testing.T) {
	s := func(n int) time.Duration { return time.Duration(n) * time.Second }
	for _, tc := range []struct {
		name  string
		at    []time.Duration
		every time.Duration
		peek  bool
		due   []time.Duration // run-out deadlines after the end, each offered once
		want  []string
	}{
		{
			name: "tick before every packet",
			at:   []time.Duration{0, s(1), s(1)},
			want: []string{
				"advance +0", "tick +0", "packet 0 +0",
				"advance +1", "tick +1", "packet 1 +1",
				"advance +1", "tick +1", "packet 2 +1",
				"due end +1", "expire +61",
			},
		},
		{
			name:  "tick at most once a second",
			at:    []time.Duration{0, s(1) / 2, s(1), s(3) / 2, s(5)},
			every: time.Second,
			want: []string{
				"advance +0", "tick +0", "packet 0 +0",
				"advance +0.5", "packet 1 +0.5",
				"advance +1", "tick +1", "packet 2 +1",
				"advance +1.5", "packet 3 +1.5",
				"advance +5", "tick +5", "packet 4 +5",
				"due end +5", "expire +65",
			},
		},
		{
			name: "run out the deadlines, then linger",
			at:   []time.Duration{0},
			due:  []time.Duration{s(10), s(20)},
			want: []string{
				"advance +0", "tick +0", "packet 0 +0",
				"due end +0", "expire +10", "advance +10",
				"due end +0", "expire +20", "advance +20",
				"due end +0", "expire +80",
			},
		},
		{
			name: "peeked first packet is handled once",
			at:   []time.Duration{s(2), s(3)},
			peek: true,
			want: []string{
				"peek clock +2",
				"advance +2", "tick +2", "packet 0 +2",
				"advance +3", "tick +3", "packet 1 +3",
				"due end +3", "expire +63",
			},
		},
		{
			name: "no packets: nothing to time out",
			peek: true,
			want: []string{"peek clock zero", "due end zero"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var now time.Time
			var got []string
			rel := func(at time.Time) string {
				if at.IsZero() {
					return "zero"
				}
				return fmt.Sprintf("+%g", at.Sub(base).Seconds())
			}
			log := func(what string, at time.Time) {
				if !at.Equal(now) {
					t.Errorf("%s at %v while the clock says %v", what, at, now)
				}
				got = append(got, what+" "+rel(at))
			}
			loop := replay.NewLoop(&sliceSource{at: tc.at}, &now)
			if tc.peek {
				if err := loop.Peek(); err != nil {
					t.Fatal(err)
				}
				got = append(got, "peek clock "+rel(now))
			}
			due := tc.due
			err := loop.Run(replay.Hooks{
				Advance:   func(at time.Time) { log("advance", at) },
				Tick:      func(at time.Time) { log("tick", at) },
				TickEvery: tc.every,
				Packet: func(p *detectors.Packet) {
					log(fmt.Sprintf("packet %d", p.DstPort), p.Time)
				},
				Due: func(end time.Time) (time.Time, bool) {
					got = append(got, "due end "+rel(end))
					if len(due) == 0 {
						return time.Time{}, false
					}
					d := due[0]
					due = due[1:]
					return end.Add(d), true
				},
				Expire: func(at time.Time) { log("expire", at) },
				Linger: time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got:\n%q\nwant:\n%q", got, tc.want)
			}
		})
	}
}

// TestLoopReadError: a source that fails stops the replay with its error
// and no run-out: what follows a broken file is not known.
func TestLoopReadError(t *testing.T) {
	broken := errors.New("broken")
	var now time.Time
	expired := false
	err := replay.NewLoop(&sliceSource{at: []time.Duration{0}, err: broken}, &now).Run(replay.Hooks{
		Expire: func(time.Time) { expired = true },
	})
	if !errors.Is(err, broken) || expired {
		t.Errorf("Run = %v, expired %v; want %v and no run-out", err, expired, broken)
	}
}

// TestLoopAllocs: the loop itself costs no allocation per packet, so a
// replayed flood costs what its detectors cost.
func TestLoopAllocs(t *testing.T) {
	allocs := func(n int) float64 {
		at := make([]time.Duration, n)
		for i := range at {
			at[i] = time.Duration(i) * time.Millisecond
		}
		return testing.AllocsPerRun(5, func() {
			var now time.Time
			tick := func(time.Time) {}
			err := replay.NewLoop(&sliceSource{at: at}, &now).Run(replay.Hooks{
				Advance: tick, Tick: tick, TickEvery: time.Second, Expire: tick,
				Packet: func(*detectors.Packet) {},
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	if few, many := allocs(10), allocs(10000); many != few {
		t.Errorf("%v allocations for 10 packets, %v for 10000: the loop allocates per packet", few, many)
	}
}
