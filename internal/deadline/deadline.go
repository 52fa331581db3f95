// Package deadline is the queue of things due at a time (stop commands,
// delayed commands) that the action engines keep: earliest first, ties in
// the order they were made, so replays come out the same every time.
package deadline

import (
	"container/heap"
	"time"
)

// Item is what a Queue orders. SetIndex is told the item's place in the
// queue (-1 once popped), which Fix needs when its due time changes.
type Item interface {
	Deadline() (due time.Time, seq uint64)
	SetIndex(i int)
}

// Queue is a min-heap of items by (due, seq). The zero value is empty.
type Queue[T Item] struct{ h items[T] }

// Len is how many items are queued.
func (q *Queue[T]) Len() int { return len(q.h) }

// Push adds x.
func (q *Queue[T]) Push(x T) { heap.Push(&q.h, x) }

// Pop removes and returns the earliest item; the queue must not be empty.
func (q *Queue[T]) Pop() T { return heap.Pop(&q.h).(T) }

// Peek returns the earliest item without removing it.
func (q *Queue[T]) Peek() (x T, ok bool) {
	if len(q.h) == 0 {
		return x, false
	}
	return q.h[0], true
}

// Fix restores the order after the item at index i changed its due time.
func (q *Queue[T]) Fix(i int) { heap.Fix(&q.h, i) }

// PopDue removes and returns every item due at or before now, in order.
func (q *Queue[T]) PopDue(now time.Time) []T {
	var out []T
	for len(q.h) > 0 {
		if due, _ := q.h[0].Deadline(); due.After(now) {
			break
		}
		out = append(out, q.Pop())
	}
	return out
}

type items[T Item] []T

func (h items[T]) Len() int { return len(h) }
func (h items[T]) Less(i, j int) bool {
	di, si := h[i].Deadline()
	dj, sj := h[j].Deadline()
	if c := di.Compare(dj); c != 0 {
		return c < 0
	}
	return si < sj
}
func (h items[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].SetIndex(i)
	h[j].SetIndex(j)
}
func (h *items[T]) Push(x any) {
	t := x.(T)
	t.SetIndex(len(*h))
	*h = append(*h, t)
}
func (h *items[T]) Pop() any {
	old := *h
	var zero T
	t := old[len(old)-1]
	old[len(old)-1] = zero
	*h = old[:len(old)-1]
	t.SetIndex(-1)
	return t
}
