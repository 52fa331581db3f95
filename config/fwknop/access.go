package fwknop

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
)

// Type is the door Type of the doors this package makes.
const Type = "fwknop"

// maxDepth is fwknopd's MAX_DEPTH: the root access file is level 1, and a
// file of level 3 may include no further.
const maxDepth = 3

// accessReader reads access.conf files into doors, one per SOURCE
// stanza, in the order fwknopd adds them to its list, which is the order
// it matches them in.
type accessReader struct {
	fs    fileSystem
	n     *notes
	doors []*knockd.Door
}

// file reads one access file at its include level (1 for a root file) as
// fwknopd's parse_access_file does. Each file has its own current stanza:
// keys before a file's first SOURCE belong to no stanza and are ignored
// (we warn), and keys that follow an %include go on with the including
// file's stanza, not with the last stanza the included file added.
func (r *accessReader) file(path string, src []byte, depth int) {
	var cur *knockd.Door
	r.n.entries(path, src, r.valueless, func(pos config.Pos, key, value string) {
		key = stripColon(key)
		switch {
		case key == dirInclude || key == dirIncludeFolder:
			if depth >= maxDepth {
				r.n.errorf(pos, key, "refusing to go deeper than %d levels of access files", maxDepth)
				return
			}
			if key == dirInclude {
				r.include(resolve(path, value), depth+1, pos, key)
			} else {
				r.folder(resolve(path, value), depth+1, pos, key)
			}
		case key == "SOURCE":
			cur = &knockd.Door{Name: "SOURCE " + value, Pos: pos, Type: Type,
				Params: []config.Param{{Key: key, Value: value, Pos: pos}}}
			r.doors = append(r.doors, cur)
		case cur == nil:
			r.n.warnf(pos, "%s outside a SOURCE stanza, ignored", key)
		case key == dirIncludeKeys:
			r.keysFile(resolve(path, value), cur, pos)
		default:
			k, ok := lookup(accessKeys, key)
			if !ok {
				r.n.warnf(pos, "ignoring unknown access parameter '%s'", key)
				return
			}
			if r.n.use(k, pos, value) {
				cur.Params = append(cur.Params, config.Param{Key: key, Value: value, Pos: pos})
			}
		}
	})
}

// include reads the access file at path, named by the line at pos.
func (r *accessReader) include(path string, depth int, pos config.Pos, key string) {
	src, err := r.fs.ReadFile(path)
	if err != nil {
		r.n.errorf(pos, key, "access file: %v", err)
		return
	}
	r.checkPerm(path)
	r.file(path, src, depth)
}

// folder reads the access files of dir at level depth, as fwknopd's
// parse_access_folder picks them: every entry whose name's last '.' starts
// ".conf" (which also takes "x.conf~" and "x.config", as fwknopd does). We
// read them in name order; fwknopd reads them in directory order, which
// no one can predict.
func (r *accessReader) folder(dir string, depth int, pos config.Pos, key string) {
	names, err := r.fs.ReadDir(dir)
	if err != nil {
		r.n.errorf(pos, key, "access folder: %v", err)
		return
	}
	for _, name := range names {
		if i := strings.LastIndexByte(name, '.'); i >= 0 && strings.HasPrefix(name[i:], ".conf") {
			r.include(filepath.Join(dir, name), depth, pos, key)
		}
	}
}

// keysFile adds the keys of a %include_keys file to the stanza door, as
// fwknopd's include_keys_file does: only the key lines count, anything
// else is warned about. fwknopd ignores a keys file it cannot read or
// parse (and then drops the stanza if it has no key left); we make either
// an error.
func (r *accessReader) keysFile(path string, door *knockd.Door, at config.Pos) {
	src, err := r.fs.ReadFile(path)
	if err != nil {
		r.n.errorf(at, dirIncludeKeys, "keys file: %v", err)
		return
	}
	r.checkPerm(path)
	r.n.entries(path, src, r.valueless, func(pos config.Pos, key, value string) {
		key = stripColon(key)
		if !slices.Contains(keysFileKeys, key) {
			r.n.warnf(pos, "ignoring invalid entry '%s': a keys file holds only keys", key)
			return
		}
		k, _ := lookup(accessKeys, key)
		if r.n.use(k, pos, value) {
			door.Params = append(door.Params, config.Param{Key: key, Value: value, Pos: pos})
		}
	})
}

// checkPerm warns, as fwknopd does, about a file of keys that others may
// read or change, or that someone else owns.
func (r *accessReader) checkPerm(path string) {
	if c, ok := r.fs.(permChecker); ok {
		for _, w := range c.permWarnings(path) {
			r.n.warnf(config.Pos{File: path}, "%s", w)
		}
	}
}

// valueless: a line without a value stops fwknopd in an access file.
func (r *accessReader) valueless(pos config.Pos, key string) {
	r.n.errorf(pos, "", "invalid access file entry %q: no value", key)
}

// stripColon cuts a key at its last ':', as fwknopd does, so "SOURCE:"
// is SOURCE.
func stripColon(key string) string {
	if i := strings.LastIndexByte(key, ':'); i >= 0 {
		return key[:i]
	}
	return key
}

// resolve makes a path named in file from relative to from's folder.
// fwknopd opens it relative to its working directory, which under an init
// system is "/"; the including file's folder is what an admin means.
func resolve(from, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(from), path)
}

var errNoStanza = errors.New("no SOURCE stanza: fwknopd needs at least one access stanza")
