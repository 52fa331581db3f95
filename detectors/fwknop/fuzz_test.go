package fwknop

import (
	"strings"
	"testing"

	"github.com/doorward/doorward/config/knockd"
)

// FuzzFromDoors: any door body is either refused with positioned errors
// or gives a stanza the detector can use (a port, a key, sources,
// timeouts at least a second), and never panics.
func FuzzFromDoors(f *testing.F) {
	for _, seed := range []string{
		"SOURCE = ANY\nKEY = k\n",
		"SOURCE = 10.0.0.0/255.255.255.0, 2001:db8::/32\nKEY_BASE64 = a2V5\nHMAC_KEY_BASE64 = aG1hYw==\nHMAC_DIGEST_TYPE = sha512\n",
		"SOURCE = ANY\nKEY = k\nOPEN_PORTS = tcp/22,udp/53\nRESTRICT_PORTS = tcp/23\nFW_ACCESS_TIMEOUT = 0\nMAX_FW_TIMEOUT = 8388608\n",
		"SOURCE = ANY\nKEY = k\nCMD_CYCLE_OPEN = a $IP\nCMD_CYCLE_CLOSE = NONE\nACCESS_EXPIRE = 1/2/2030\n",
		"SOURCE = ANY\nKEY = k\nPCAP_FILTER = udp dst port 1\nENABLE_UDP_SERVER = Y\nUDPSERV_PORT = 9\nNft_Set = inet f s\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		kc, err := knockd.Parse("doors.conf", []byte("[d]\ntype = fwknop\n"+body))
		if err != nil {
			return
		}
		ss, err := FromDoors(kc.Doors, func(d *knockd.Door) string { return d.Name }, SetupOptions{})
		if err != nil {
			if !strings.Contains(err.Error(), "doors.conf:") {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		for _, s := range ss {
			if s.Port == 0 || len(s.Keys.Key) == 0 || len(s.Source) == 0 || s.AccessTimeout < 1e9 || s.MaxTimeout < 1e9 || s.MaxAge < 1e9 {
				t.Fatalf("accepted an unusable stanza: %+v", *s)
			}
		}
	})
}
