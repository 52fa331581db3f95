// Package fwknop reads fwknopd's own configuration, an fwknopd.conf and
// the access.conf files it names, into knockd's door model, so that
// `knockd -c /etc/fwknop/fwknopd.conf` runs an unchanged fwknop setup.
// It checks only the grammar; the values are the detector's to validate
// (detectors/fwknop), because a `Type = fwknop` door of our own config
// holds the same keys.
package fwknop

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
)

// An unchanged fwknopd.conf, or an access.conf on its own, is a config
// `knockd -c` runs.
func init() {
	knockd.RegisterLoader(knockd.Loader{
		Name:      "fwknopd.conf",
		Recognise: Recognise,
		Load: func(path string, src []byte, opt knockd.LoadOptions) (*knockd.Config, error) {
			// -D skips the permission checks, as doormand's -D does;
			// fwknopd has no such switch, but only warns.
			return load(path, src, osFS{perms: !opt.Debug})
		},
	})
}

type fileKind int

const (
	notOurs fileKind = iota
	serverFile
	accessFile
)

// Recognise says whether the file at path is an fwknopd.conf or an
// access.conf. A file with a "[section]" line never is (a knockd.conf
// always has one). Otherwise the names fwknopd gives them decide, and
// failing that the content: a SOURCE line makes an access.conf, a line
// with an fwknopd.conf key an fwknopd.conf, provided no line reads
// "key = value"; a file of comments only is an fwknopd.conf if it holds
// at least three commented-out fwknopd.conf keys ("#PCAP_INTF eth0;"), as
// the shipped one does.
func Recognise(path string, src []byte) bool { return kindOf(path, src) != notOurs }

func kindOf(path string, src []byte) fileKind {
	var source, iniLike bool
	var keys, commented, active int
	for line := range strings.SplitSeq(string(src), "\n") {
		t := strings.Trim(line, space)
		if strings.HasPrefix(t, "[") {
			return notOurs
		}
		fs := strings.Fields(t)
		if len(fs) == 0 {
			continue
		}
		if strings.HasPrefix(t, "#") {
			if name := strings.TrimPrefix(fs[0], "#"); len(fs) > 1 && name != "" {
				if _, ok := lookup(serverKeys, name); ok {
					commented++
				}
			}
			continue
		}
		active++
		if strings.Contains(fs[0], "=") || (len(fs) > 1 && strings.HasPrefix(fs[1], "=")) {
			iniLike = true
		}
		key := stripColon(fs[0])
		if key == "SOURCE" {
			source = true
		}
		if _, ok := lookup(serverKeys, key); ok {
			keys++
		}
	}
	switch filepath.Base(path) {
	case "fwknopd.conf":
		return serverFile
	case "access.conf":
		return accessFile
	}
	switch {
	case iniLike:
		return notOurs
	case source:
		return accessFile
	case keys > 0 || (active == 0 && commented >= 3):
		return serverFile
	}
	return notOurs
}

// load builds the config `knockd -c path` runs, reading includes from fsys.
//
// The config has one door of Type "fwknop" per SOURCE stanza, in the order
// fwknopd matches them, named "SOURCE <value>" (config.Keys tells apart
// stanzas with the same SOURCE), at the SOURCE line. Its Params are the
// stanza's keys as written (SOURCE first, the colon fwknopd allows after a
// key removed, keys of a %include_keys file where that line stands), each
// at its own file:line; then the fwknopd.conf keys of Use Door that the
// file sets, each once with its last value; DIGEST_FILE, when only
// FWKNOP_RUN_DIR is set, is that folder's digest.cache, as fwknopd derives
// it; a relative DIGEST_FILE is taken from the fwknopd.conf's folder, as
// the access files are. The first door also carries the config's warnings
// (WarningKey). PCAP_INTF is the capture interface; the daemon logs to
// syslog, as fwknopd does.
func load(path string, src []byte, fsys fileSystem) (*knockd.Config, error) {
	n := &notes{}
	r := &accessReader{fs: fsys, n: n}
	cfg := &knockd.Config{File: path, Options: knockd.Options{
		UseSyslog: true,
		Pos:       map[string]config.Pos{"UseSyslog": {File: path}},
	}}
	var serverParams []config.Param
	r.checkPerm(path)
	if kindOf(path, src) == accessFile {
		r.file(path, src, 1)
	} else {
		srv := readServer(path, src, n)
		if e, ok := srv.get("PCAP_INTF"); ok {
			if validInterface(e.Value) {
				cfg.Options.Interfaces = []string{e.Value}
				cfg.Options.Pos["Interface"] = e.Pos
			} else {
				n.errorf(e.Pos, e.Key, "%q is not an interface name", e.Value)
			}
		}
		readAccess(r, srv)
		serverParams = doorParams(srv)
	}
	if len(r.doors) == 0 && len(n.errs) == 0 {
		n.errs.Add(&config.Error{Pos: config.Pos{File: path}, Err: errNoStanza})
	}
	for i, d := range r.doors {
		d.Params = slices.Concat(d.Params, serverParams)
		if i == 0 {
			d.Params = append(d.Params, n.warns...)
		}
	}
	cfg.Doors = r.doors
	return cfg, n.errs.Err()
}

// readAccess reads the access files srv names: ACCESS_FOLDER's *.conf
// files if it is set (each a root file, as fwknopd reads them), else
// ACCESS_FILE. Relative paths are taken from the fwknopd.conf's folder.
// Without ACCESS_FILE, the access.conf beside the fwknopd.conf is read:
// fwknopd reads /etc/fwknop/access.conf, which is that file for the
// fwknopd.conf fwknop installs.
func readAccess(r *accessReader, srv *server) {
	if e, ok := srv.get("ACCESS_FOLDER"); ok {
		r.folder(resolve(srv.file, strings.TrimSuffix(e.Value, "/")), 1, e.Pos, e.Key)
		return
	}
	if e, ok := srv.get("ACCESS_FILE"); ok {
		r.include(resolve(srv.file, e.Value), 1, e.Pos, e.Key)
		return
	}
	r.include(filepath.Join(filepath.Dir(srv.file), "access.conf"), 1, config.Pos{File: srv.file}, "")
}

// doorParams are the fwknopd.conf keys every door gets, in the order of
// ServerKeys.
func doorParams(srv *server) []config.Param {
	var out []config.Param
	for _, k := range serverKeys {
		if k.Use != Door {
			continue
		}
		e, ok := srv.get(k.Name)
		if !ok && k.Name == "DIGEST_FILE" {
			e, ok = srv.get("FWKNOP_RUN_DIR")
			e.Value = strings.TrimSuffix(e.Value, "/") + "/digest.cache"
		}
		if ok && k.Name == "DIGEST_FILE" {
			e.Value = resolve(srv.file, e.Value)
		}
		if ok {
			out = append(out, config.Param{Key: k.Name, Value: e.Value, Pos: e.Pos})
		}
	}
	return out
}

// validInterface: one interface name as the kernel allows it (at most 15
// bytes, no space or '/'); PCAP_INTF names one, not a list.
func validInterface(s string) bool {
	return s != "" && len(s) <= 15 && !strings.ContainsAny(s, space+"/,")
}
