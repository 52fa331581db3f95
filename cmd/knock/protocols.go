package main

// The client protocols this build of knock speaks. Each registers its
// command line from init() (package client); adding a protocol to knock
// is one line here.
import (
	_ "github.com/doorward/doorward/client/doorman"     // knock doorman
	_ "github.com/doorward/doorward/client/fwknop"      // knock fwknop
	_ "github.com/doorward/doorward/client/knockdaemon" // knock knockdaemon (alias span)
	_ "github.com/doorward/doorward/client/sequence"    // knock host port... (the default)
)
