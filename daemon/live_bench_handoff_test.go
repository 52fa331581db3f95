//go:build linux

package daemon

import "context"

// benchConsume reads and dispatches n packets of the first source as
// Live's reader does, into b: BenchmarkLiveBlock's part that follows the
// ring.
func (l *live) benchConsume(b *batch, n int) {
	src := l.sources[0].src
	for n > 0 {
		if _, err := l.pump(context.Background(), src, b); err != nil {
			panic(err)
		}
		n -= b.n
	}
}
