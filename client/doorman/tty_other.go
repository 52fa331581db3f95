//go:build !linux

package doorman

import "errors"

// ReadSecret is only implemented on Linux; elsewhere give -s or a
// .knockcf secret.
func ReadSecret(prompt string) ([]byte, error) {
	return nil, errors.New("no secret given (-s or ~/.knockcf), and prompting is only supported on Linux")
}
