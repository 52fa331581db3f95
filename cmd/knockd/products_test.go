package main

import (
	"os"
	"reflect"
	"testing"
)

// TestOnlyProductsUnderCmd: `make build` builds ./cmd/... and an install
// ships what it built, so every directory under cmd/ is a program an admin
// installs. Tools for developers (the flood generator) live beside what
// they serve (bench/knock-flood).
func TestOnlyProductsUnderCmd(t *testing.T) {
	entries, err := os.ReadDir("..")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if want := []string{"knock", "knockd"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cmd/ holds %q, want only the shipped binaries %q", got, want)
	}
}
