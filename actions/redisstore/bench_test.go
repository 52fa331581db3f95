package redisstore_test

import (
	"crypto/md5"
	"encoding/binary"
	"testing"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/redisstore"
	"github.com/doorward/doorward/actions/redisstore/redistest"
)

// BenchmarkSpend is the cost a shared-state knock adds: one Spend (one
// EVALSHA round trip) per accepted knock, Redis on a unix socket and on
// loopback TCP, against
// the file backend's ring (fsynced, as the port-span store asks) and its
// memory mode.
func BenchmarkSpend(b *testing.B) {
	sp := actions.Space{Name: "bench.spent", Layout: actions.Ring, Size: 4096, Sync: true}
	run := func(b *testing.B, s actions.Store) {
		tok, _, err := s.Tokens(sp)
		if err != nil {
			b.Fatal(err)
		}
		defer tok.Close()
		var n [8]byte
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			binary.LittleEndian.PutUint64(n[:], uint64(i))
			d := md5.Sum(n[:])
			if got, err := tok.Spend(t0, d[:]); err != nil || !got.Fresh {
				b.Fatalf("%+v, %v", got, err)
			}
		}
	}
	b.Run("redis-unix", func(b *testing.B) { run(b, benchRedis(b, redistest.Start(b))) })
	b.Run("redis-tcp", func(b *testing.B) { run(b, benchRedis(b, redistest.StartTCP(b))) })
	b.Run("file-fsync", func(b *testing.B) { run(b, filestore.New(filestore.Options{Dir: b.TempDir()})) })
	b.Run("memory", func(b *testing.B) { run(b, filestore.Memory()) })
}

// BenchmarkAdd is one counter increment (a knockdaemon ++): one EVALSHA
// on Redis, against the state cache in memory (the file is rewritten by
// Sync, once per knock, not here).
func BenchmarkAdd(b *testing.B) {
	run := func(b *testing.B, s actions.Store) {
		v, err := s.Values(actions.Space{Name: "StateCache"})
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close()
		key := []string{"10.0.0.1", "visits"}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Add(key, 1, t0); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("redis-unix", func(b *testing.B) { run(b, benchRedis(b, redistest.Start(b))) })
	b.Run("redis-tcp", func(b *testing.B) { run(b, benchRedis(b, redistest.StartTCP(b))) })
	b.Run("file", func(b *testing.B) { run(b, filestore.Memory()) })
}

func benchRedis(b *testing.B, srv *redistest.Server) *redisstore.Store {
	s, err := redisstore.New(redisstore.Options{URL: srv.URL()}, filestore.Memory().Doors, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
