package deadline

import (
	"slices"
	"testing"
	"time"
)

type job struct {
	name  string
	due   time.Time
	seq   uint64
	index int
}

func (j *job) Deadline() (time.Time, uint64) { return j.due, j.seq }
func (j *job) SetIndex(i int)                { j.index = i }

func TestQueue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var q Queue[*job]
	jobs := []*job{
		{name: "c", due: t0.Add(3 * time.Second), seq: 1},
		{name: "a2", due: t0.Add(time.Second), seq: 3},
		{name: "a1", due: t0.Add(time.Second), seq: 2}, // same due: made first, runs first
		{name: "b", due: t0.Add(2 * time.Second), seq: 4},
	}
	for _, j := range jobs {
		q.Push(j)
	}
	if next, ok := q.Peek(); !ok || next.name != "a1" {
		t.Fatalf("Peek = %v, %v; want a1", next, ok)
	}
	// c is moved before everything.
	jobs[0].due = t0
	q.Fix(jobs[0].index)
	var got []string
	for _, j := range q.PopDue(t0.Add(time.Second)) {
		got = append(got, j.name)
		if j.index != -1 {
			t.Errorf("%s still has index %d after Pop", j.name, j.index)
		}
	}
	if want := []string{"c", "a1", "a2"}; !slices.Equal(got, want) {
		t.Errorf("PopDue = %v, want %v", got, want)
	}
	if q.Len() != 1 || q.Pop().name != "b" {
		t.Errorf("left in the queue: want b")
	}
	if _, ok := q.Peek(); ok {
		t.Error("Peek on an empty queue says ok")
	}
}
