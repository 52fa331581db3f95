package knockdaemon

// The behaviour tests run migrated configs through the daemon, with the
// build's protocols.
import _ "github.com/doorward/doorward/protocols"
