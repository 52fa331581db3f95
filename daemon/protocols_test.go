package daemon

// The daemon's tests run the build's protocols, as cmd/knockd does.
import _ "github.com/doorward/doorward/protocols"
