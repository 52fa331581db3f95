package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockdaemon"
)

// migrate is knockd --migrate FILE: the INI on stdout, each note's first
// line on stderr as well. Exit 0 when a config was printed (notes or not),
// 1 when the file could not be read.
func migrate(path string, stdout, stderr io.Writer) int {
	res, err := knockdaemon.MigrateFile(path)
	if err != nil {
		for _, e := range config.Errors(err) {
			fmt.Fprintf(stderr, "knockd: %v\n", e)
		}
		return 1
	}
	fmt.Fprint(stdout, res.INI)
	for _, n := range res.Notes {
		first, _, _ := strings.Cut(n, "\n")
		fmt.Fprintf(stderr, "migrate: %s\n", first)
	}
	if len(res.Notes) > 0 {
		fmt.Fprintf(stderr, "knockd: %d notes; each is a \"# migrate:\" comment in the output\n", len(res.Notes))
	}
	return 0
}
