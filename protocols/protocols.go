// Package protocols lists the knock protocols built into knockd. Each
// protocol registers itself from its own folders' init functions (its
// detector with detectors.Register, its action with actions.Register, its
// config loader with knockd.RegisterLoader), and the runtime imports none
// of them: a blank import here is what puts one in the binary.
//
// Add a line here to add a protocol (README.md, "Adding a protocol").
package protocols

import (
	// knockd's port sequences (and one-time sequences): doors without a
	// Type line; their knocks go to the command engine.
	_ "github.com/doorward/doorward/detectors/sequence"

	// doorman single-packet knocks, and an unchanged doormand.cf as -c.
	_ "github.com/doorward/doorward/actions/doorman"
	_ "github.com/doorward/doorward/config/doorman"
	_ "github.com/doorward/doorward/detectors/doorman"

	// knockdaemon's encrypted port-span knocks and their action sections.
	_ "github.com/doorward/doorward/actions/knockdaemon"
	_ "github.com/doorward/doorward/detectors/knockdaemon"

	// fwknop single-packet authorization (SPA), and an unchanged
	// fwknopd.conf (with its access.conf) as -c.
	_ "github.com/doorward/doorward/actions/fwknop"
	_ "github.com/doorward/doorward/config/fwknop"
	_ "github.com/doorward/doorward/detectors/fwknop"
)
