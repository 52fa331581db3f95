package otp

import (
	"path/filepath"
	"testing"

	"github.com/doorward/doorward/internal/trust/trusttest"
)

// TestUntrustedRefused: a sequences file someone else could have written
// decides who may open a door; it is refused with the path named.
func TestUntrustedRefused(t *testing.T) {
	trusttest.Run(t, "otp.seq", []byte("2001,2002\n"), func(dir string) error {
		_, err := Open(filepath.Join(dir, "otp.seq"))
		return err
	})
}
