//go:build linux

package daemon

// benchConsume dispatches n packets as Live's loop does: BenchmarkLiveBlock's
// part that follows the hand-off between the reader and the goroutine that
// owns the detectors.
func (l *live) benchConsume(p *plan, n int) {
	for n > 0 {
		b := <-l.full
		n -= b.n
		l.dispatch(p, b, nil)
	}
}
