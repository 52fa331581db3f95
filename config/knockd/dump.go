package knockd

import (
	"fmt"
	"strings"

	"github.com/doorward/doorward/formats/sequence"
)

// Dump prints c in a stable, line-oriented form: every field of every door,
// defaults included, so a golden file shows exactly what a config means and a
// `-check`-style tool can show an admin how their file was understood.
// Strings are Go-quoted so trailing spaces and empty values are visible.
func (c *Config) Dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "file %q\n", c.File)

	o := c.Options
	b.WriteString("[options]\n")
	opt := func(name, val string) {
		if pos, ok := o.Pos[name]; ok {
			fmt.Fprintf(&b, "  %s = %s  # line %d\n", name, val, pos.Line)
		} else {
			fmt.Fprintf(&b, "  %s = %s  # not set\n", name, val)
		}
	}
	opt("UseSyslog", fmt.Sprint(o.UseSyslog))
	opt("LogFile", fmt.Sprintf("%q", o.LogFile))
	opt("PidFile", fmt.Sprintf("%q", o.PidFile))
	opt("Interface", fmt.Sprintf("%q", o.Interfaces))
	opt("StateDir", fmt.Sprintf("%q", o.StateDir))
	opt("LogTail", fmt.Sprintf("%q", o.LogTail))
	opt("StateCache", fmt.Sprintf("%q", o.StateCache))
	opt("MaxSources", fmt.Sprint(o.MaxSources))
	opt("LogRate", fmt.Sprint(o.LogRate))
	if o.Metrics != "" { // newer than the goldens: shown only when set
		opt("Metrics", fmt.Sprintf("%q", o.Metrics))
	}
	if o.State != "" { // newer than the goldens: shown only when set
		opt("State", fmt.Sprintf("%q", o.State))
		opt("State_Password_File", fmt.Sprintf("%q", o.StatePasswordFile))
		opt("State_Prefix", fmt.Sprintf("%q", o.StatePrefix))
		opt("State_Sentinel", fmt.Sprintf("%q", o.StateSentinel))
		opt("State_Sentinel_Master", fmt.Sprintf("%q", o.StateSentinelMaster))
	}

	for _, d := range c.Doors {
		fmt.Fprintf(&b, "[%q]  # line %d\n", d.Name, d.Pos.Line)
		if d.Group != "" { // newer than the goldens: shown only when set
			fmt.Fprintf(&b, "  Group = %s  # line %d\n", d.Group, d.GroupPos.Line)
		}
		if d.Type != "" {
			fmt.Fprintf(&b, "  Type = %s\n", d.Type)
			for _, prm := range d.Params {
				fmt.Fprintf(&b, "  %s = %q  # line %d\n", prm.Key, prm.Value, prm.Pos.Line)
			}
			continue
		}
		if len(d.Sequence) == 0 {
			b.WriteString("  Sequence = (none)\n")
		} else {
			fmt.Fprintf(&b, "  Sequence = %s\n", sequence.Format(d.Sequence))
		}
		fmt.Fprintf(&b, "  One_Time_Sequences = %q\n", d.OneTimeSequences)
		fmt.Fprintf(&b, "  Seq_Timeout = %v\n", d.SeqTimeout)
		if d.HasTCPFlags {
			fmt.Fprintf(&b, "  TCPFlags = %s\n", d.TCPFlags)
		} else {
			b.WriteString("  TCPFlags = (any)\n")
		}
		fmt.Fprintf(&b, "  Start_Command = %q\n", d.StartCommand)
		fmt.Fprintf(&b, "  Start_Command_6 = %s\n", optString(d.StartCommand6))
		fmt.Fprintf(&b, "  Stop_Command = %q\n", d.StopCommand)
		fmt.Fprintf(&b, "  Stop_Command_6 = %s\n", optString(d.StopCommand6))
		fmt.Fprintf(&b, "  Cmd_Timeout = %v\n", d.CmdTimeout)
		fmt.Fprintf(&b, "  Target = %q\n", d.Target)
		fmt.Fprintf(&b, "  Cooldown = %v\n", d.Cooldown)
		// Only when set, so the dumps of configs without them stay as
		// they were.
		if !d.NftSet.IsZero() {
			fmt.Fprintf(&b, "  Nft_Set = %q\n", d.NftSet)
		}
		if !d.NftSet6.IsZero() {
			fmt.Fprintf(&b, "  Nft_Set_6 = %q\n", d.NftSet6)
		}
		if r := d.Rotating; r != nil {
			fmt.Fprintf(&b, "  Rotating_Secret = %q\n", r.Secret)
			fmt.Fprintf(&b, "  Rotating_Ports = %s\n", r.Ports)
			fmt.Fprintf(&b, "  Rotating_Length = %d\n", r.Length)
			fmt.Fprintf(&b, "  Rotating_Period = %d\n", r.Period)
			fmt.Fprintf(&b, "  Rotating_Skew = %d\n", r.Skew)
			fmt.Fprintf(&b, "  Rotating_Protocol = %s\n", r.Mode)
		}
	}
	return b.String()
}

// String writes fl in knockd's tcpflags syntax (lowercase, "!" for must-be-
// clear), in TCP header bit order.
func (fl Flags) String() string {
	var parts []string
	for _, f := range tcpFlagBits {
		switch {
		case fl.Set&f.bit != 0:
			parts = append(parts, strings.ToLower(f.name))
		case fl.Clear&f.bit != 0:
			parts = append(parts, "!"+strings.ToLower(f.name))
		}
	}
	return strings.Join(parts, ",")
}

func optString(s *string) string {
	if s == nil {
		return "(unset)"
	}
	return fmt.Sprintf("%q", *s)
}
