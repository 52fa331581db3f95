//go:build !linux

package secret

import "errors"

// Read is only implemented on Linux; elsewhere give the secret another way.
func Read(prompt string) ([]byte, error) {
	return nil, errors.New("no secret given, and prompting is only supported on Linux")
}

// IsTerminal is false where Read is not implemented.
func IsTerminal(fd uintptr) bool { return false }
