package daemon

// latest is a one-slot mailbox in which a newer value replaces one not yet
// taken ("latest wins"). Its one sender never blocks, so the packet loop
// can hand a reloaded config to a goroutine that is busy (an Action running
// a 30 s doorman script, the engine running a command): that goroutine
// gets the newest config when it is free, and stale ones are skipped.
// Only one goroutine may put; any may receive from the channel.
type latest[T any] chan T

func newLatest[T any]() latest[T] { return make(latest[T], 1) }

// put leaves v in the slot, dropping a value still waiting there.
func (m latest[T]) put(v T) {
	for {
		select {
		case m <- v:
			return
		default:
		}
		select {
		case <-m: // stale: the receiver has not taken it yet
		default: // taken meanwhile: the next send succeeds
		}
	}
}
