package fwknop

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/client"
	"github.com/doorward/doorward/formats/fwknop"
)

const (
	keyB64  = "ZG9vcndhcmQtdGVzdC1yaWpuZGFlbC1rZXktMzJieXQ=" // "doorward-test-rijndael-key-32byt"
	hmacB64 = "aG1hYy1rZXktZm9yLWtub2NrLWZ3a25vcC10ZXN0cw==" // "hmac-key-for-knock-fwknop-tests"
)

// knock runs "knock fwknop args..." in-process with HOME at home.
func knock(t *testing.T, home string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"HOME": home, "USER": "alice"}
	code = runCLI(context.Background(), args, client.Env{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Version: "test",
		Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errb.String()
}

// writeRC writes an fwknoprc into a fresh home folder and returns the folder.
func writeRC(t *testing.T, text string) string {
	t.Helper()
	home := t.TempDir()
	if text != "" {
		if err := os.WriteFile(filepath.Join(home, ".fwknoprc"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

const rcText = `# an fwknoprc as fwknop writes them
[default]
USE_HMAC                    Y
HMAC_DIGEST_TYPE            sha512
SPA_SERVER_PORT             62201

[web]
ACCESS                      tcp/443,tcp/80
SPA_SERVER                  192.0.2.1
KEY_BASE64:                 ` + keyB64 + `
HMAC_KEY_BASE64             ` + hmacB64 + `   ; trailing comment
ALLOW_IP                    source
FW_TIMEOUT                  90
SPOOF_USER                  webops

[Other]
ACCESS tcp/22
`

func TestCLIBuildsPackets(t *testing.T) {
	keys := fwknop.Keys{Key: mustB64(keyB64), HMACKey: mustB64(hmacB64)}
	sha512Keys := keys
	sha512Keys.HMAC = fwknop.DigestSHA512
	tests := []struct {
		name string
		rc   string
		args []string
		keys fwknop.Keys
		want fwknop.Message // Random and Time are not compared
	}{
		{
			name: "options only",
			args: []string{"-A", "tcp/22", "-a", "192.0.2.7", "--key-base64-rijndael", keyB64, "--key-base64-hmac", hmacB64},
			keys: keys,
			want: fwknop.Message{User: "alice", Version: "3.0.0", Type: fwknop.MsgAccess, Access: "192.0.2.7,tcp/22"},
		},
		{
			name: "two ports, a timeout, SHA-512, -s, -U",
			args: []string{"-A", "tcp/22,udp/53", "-s", "-f", "30", "-U", "bob", "--hmac-digest-type", "SHA512",
				"--key-base64-rijndael", keyB64, "--key-base64-hmac", hmacB64, "-m", "sha384"},
			keys: sha512Keys,
			want: fwknop.Message{User: "bob", Version: "3.0.0", Type: fwknop.MsgClientTimeoutAccess, Access: "0.0.0.0,tcp/22,udp/53",
				ClientTimeout: 30, Digest: fwknop.DigestSHA384},
		},
		{
			name: "IPv6 allow-IP, raw keys, abbreviated option",
			args: []string{"--acc", "tcp/22", "-a", "2001:db8::7", "--key-rijndael", "passphrase", "--key-hmac", "hmac-key"},
			keys: fwknop.Keys{Key: []byte("passphrase"), HMACKey: []byte("hmac-key")},
			want: fwknop.Message{User: "alice", Version: "3.0.0", Type: fwknop.MsgAccess, Access: "2001:db8::7,tcp/22"},
		},
		{
			name: "no HMAC, legacy mode",
			args: []string{"-A", "udp/1194", "-a", "192.0.2.7", "--key-rijndael", "short", "-M", "legacy"},
			keys: fwknop.Keys{Key: []byte("short"), Mode: fwknop.ModeLegacy},
			want: fwknop.Message{User: "alice", Version: "3.0.0", Type: fwknop.MsgAccess, Access: "192.0.2.7,udp/1194"},
		},
		{
			name: "named stanza over default",
			rc:   rcText,
			args: []string{"-n", "WEB"},
			keys: sha512Keys,
			want: fwknop.Message{User: "webops", Version: "3.0.0", Type: fwknop.MsgClientTimeoutAccess, Access: "0.0.0.0,tcp/443,tcp/80", ClientTimeout: 90},
		},
		{
			name: "command line over stanza",
			rc:   rcText,
			args: []string{"-n", "web", "-A", "tcp/22", "-a", "198.51.100.9", "-f", "0", "--hmac-digest-type", "sha256"},
			keys: keys,
			want: fwknop.Message{User: "webops", Version: "3.0.0", Type: fwknop.MsgAccess, Access: "198.51.100.9,tcp/22"},
		},
		{
			name: "NAT access",
			args: []string{"-A", "tcp/22", "-a", "192.0.2.7", "-N", "10.0.0.5,2222", "--key-base64-rijndael", keyB64, "--key-base64-hmac", hmacB64},
			keys: keys,
			want: fwknop.Message{User: "alice", Version: "3.0.0", Type: fwknop.MsgNATAccess, Access: "192.0.2.7,tcp/22", NATAccess: "10.0.0.5,2222"},
		},
		{
			name: "server command",
			args: []string{"-C", "uptime", "-a", "192.0.2.7", "--key-base64-rijndael", keyB64, "--key-base64-hmac", hmacB64},
			keys: keys,
			want: fwknop.Message{User: "alice", Version: "3.0.0", Type: fwknop.MsgCommand, Access: "192.0.2.7,uptime"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := writeRC(t, tt.rc)
			save := filepath.Join(t.TempDir(), "pkt")
			before := time.Now().Unix()
			code, stdout, stderr := knock(t, home, append(tt.args, "-T", "-B", save)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			pkt := strings.TrimSpace(stdout)
			if saved, _ := os.ReadFile(save); string(saved) != pkt+"\n" {
				t.Errorf("-B wrote %q, want the packet and a newline", saved)
			}
			got, err := fwknop.Open([]byte(pkt), &tt.keys)
			if err != nil {
				t.Fatalf("Open(%q): %v", pkt, err)
			}
			if got.Time < before || got.Time > time.Now().Unix() || len(got.Random) != 16 {
				t.Errorf("time %d, random %q: not now and 16 digits", got.Time, got.Random)
			}
			got.Time, got.Random = 0, ""
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCLIRefuses(t *testing.T) {
	key := []string{"--key-rijndael", "k", "-T"}
	tests := []struct {
		name string
		rc   string
		args []string
		want string // regexp on stderr
	}{
		{name: "no allow-IP", args: append([]string{"-A", "tcp/22"}, key...), want: "must use one of -s or -a"},
		{name: "no ports", args: append([]string{"-a", "192.0.2.7"}, key...), want: "no ports to open: give -A"},
		{name: "bad ports", args: append([]string{"-a", "192.0.2.7", "-A", "tcp/99999"}, key...), want: `-A tcp/99999: expected proto/port`},
		{name: "host name as allow-IP", args: append([]string{"-a", "example.org", "-A", "tcp/22"}, key...), want: `--allow-ip: allow-IP "example.org"`},
		{name: "-R", args: []string{"-R"}, want: "-R: resolving the external address is not supported"},
		{name: "tcp transport", args: []string{"-P", "tcp"}, want: `--server-proto: server protocol "tcp": only udp`},
		{name: "bad digest", args: []string{"--hmac-digest-type", "sha-1"}, want: `unknown digest type "sha-1"`},
		{name: "CTR mode", args: []string{"-M", "CTR"}, want: `unsupported encryption mode "CTR"`},
		{name: "port 0", args: []string{"-p", "0"}, want: `--server-port: port "0"`},
		{name: "unknown option", args: []string{"--bogus"}, want: `unrecognized option '--bogus'`},
		{name: "operand", args: []string{"host"}, want: `unexpected argument "host"`},
		{name: "no server", args: []string{"-A", "tcp/22", "-a", "192.0.2.7", "--key-rijndael", "k"}, want: "no server: give -D"},
		{name: "key too long", args: append([]string{"-A", "tcp/22", "-a", "192.0.2.7", "--key-rijndael", strings.Repeat("k", 33)}, "-T"), want: "Rijndael key must be 1 to 32 bytes"},
		{name: "legacy with HMAC", args: append([]string{"-A", "tcp/22", "-a", "192.0.2.7", "-M", "legacy", "--key-hmac", "h"}, key...), want: "legacy encryption mode cannot be used with an HMAC"},
		{name: "missing stanza", rc: rcText, args: []string{"-n", "nosuch"}, want: `named configuration stanza \[nosuch\] was not found`},
		{name: "unknown rc key", rc: "[default]\nACCES tcp/22\n", args: key, want: `\.fwknoprc:2: ACCES: unknown key "ACCES"`},
		{name: "GnuPG", rc: "[default]\nUSE_GPG Y\n", args: key, want: `\.fwknoprc:2: USE_GPG: USE_GPG Y: GnuPG mode is not supported`},
		{name: "rc key without value", rc: "[default]\nACCESS\n", args: key, want: `\.fwknoprc:2: "ACCESS" has no value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := knock(t, writeRC(t, tt.rc), tt.args...)
			if code != 1 || stdout != "" || !regexp.MustCompile(tt.want).MatchString(stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", code, stdout, stderr, tt.want)
			}
		})
	}
}

func TestCLIWarnsAndIgnores(t *testing.T) {
	home := writeRC(t, "[default]\nRAND_PORT Y\nKEY secret\n")
	os.Chmod(filepath.Join(home, ".fwknoprc"), 0o644)
	code, _, stderr := knock(t, home, "-A", "tcp/22", "-a", "192.0.2.7", "-T")
	want := "knock fwknop: warning: " + home + "/.fwknoprc holds keys and is readable by others (chmod 600 " + home + "/.fwknoprc)\n" +
		"knock fwknop: warning: " + home + "/.fwknoprc:2: RAND_PORT is not supported, ignored\n"
	if code != 0 || stderr != want {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", code, stderr, want)
	}
}

func TestReadRC(t *testing.T) {
	path := filepath.Join(writeRC(t, rcText), ".fwknoprc")
	got, err := readRC(path, "web")
	want := []setting{
		{"USE_HMAC", "Y", 3}, {"HMAC_DIGEST_TYPE", "sha512", 4}, {"SPA_SERVER_PORT", "62201", 5},
		{"ACCESS", "tcp/443,tcp/80", 8}, {"SPA_SERVER", "192.0.2.1", 9}, {"KEY_BASE64", keyB64, 10},
		{"HMAC_KEY_BASE64", hmacB64, 11}, {"ALLOW_IP", "source", 12}, {"FW_TIMEOUT", "90", 13}, {"SPOOF_USER", "webops", 14},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("readRC = %v, %v\nwant %v", got, err, want)
	}
	if got, err := readRC(filepath.Join(t.TempDir(), "none"), ""); got != nil || err != nil {
		t.Errorf("missing file without -n: %v, %v; want nothing", got, err)
	}
	if _, err := readRC(filepath.Join(t.TempDir(), "none"), "web"); err == nil {
		t.Error("missing file with -n: no error")
	}
}

func TestKeyGen(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		hmacSize int
	}{{nil, 64}, {[]string{"--hmac-digest-type", "sha512"}, 128}, {[]string{"--hmac-digest-type", "md5"}, 16}} {
		code, stdout, _ := knock(t, t.TempDir(), append(tt.args, "--key-gen")...)
		m := regexp.MustCompile(`^KEY_BASE64: (\S+)\nHMAC_KEY_BASE64: (\S+)\n$`).FindStringSubmatch(stdout)
		if code != 0 || m == nil || len(mustB64(m[1])) != 32 || len(mustB64(m[2])) != tt.hmacSize {
			t.Errorf("knock fwknop %v --key-gen: exit %d, %q; want a 32-byte key and a %d-byte HMAC key", tt.args, code, stdout, tt.hmacSize)
		}
	}
}

// TestLoopback sends real datagrams to loopback sockets, IPv4 and IPv6,
// and opens what arrives.
func TestLoopback(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			addr := map[string]string{"udp4": "127.0.0.1:0", "udp6": "[::1]:0"}[network]
			pc, err := net.ListenPacket(network, addr)
			if err != nil {
				t.Skip(err)
			}
			defer pc.Close()
			host, port, _ := net.SplitHostPort(pc.LocalAddr().String())
			code, _, stderr := knock(t, t.TempDir(), "-A", "tcp/22", "-a", "192.0.2.7", "-D", host, "-p", port,
				"--key-base64-rijndael", keyB64, "--key-base64-hmac", hmacB64)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 2048)
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			m, err := fwknop.Open(buf[:n], &fwknop.Keys{Key: mustB64(keyB64), HMACKey: mustB64(hmacB64)})
			if err != nil || m.Access != "192.0.2.7,tcp/22" {
				t.Fatalf("Open = %+v, %v", m, err)
			}
		})
	}
}
