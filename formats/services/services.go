// Package services reads /etc/services (services(5)) as getservbyname
// sees it, for the doorman protocol's service names: the knock client
// resolves the service it knocks for, the server the services of a guest
// list. It is a format, not part of config/doorman, because the client
// must not import a config dialect (arch_test.go).
package services

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// File is where service names are looked up.
const File = "/etc/services"

// Read reads a services file into name → port, as getservbyname(name,
// NULL) sees it: names and aliases, case-sensitive, any protocol, the
// first line that names a service wins.
func Read(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		if pe, ok := err.(*os.PathError); ok { // the caller names the file
			err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
		}
		return nil, fmt.Errorf("services: %w", err)
	}
	defer f.Close()
	return Parse(f)
}

// Parse is Read on an open file. Lines that do not read as
// "name port/protocol [alias…]" are skipped, as getservent skips them.
func Parse(r io.Reader) (map[string]int, error) {
	out := map[string]int{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		portText, _, ok := strings.Cut(fs[1], "/")
		port, err := strconv.Atoi(portText)
		if !ok || err != nil || port < 0 || port > 65535 {
			continue
		}
		for _, name := range append(fs[:1:1], fs[2:]...) {
			if _, seen := out[name]; !seen {
				out[name] = port
			}
		}
	}
	return out, sc.Err()
}
