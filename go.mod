module github.com/doorward/doorward

go 1.26.0

require (
	github.com/fsnotify/fsnotify v1.6.0
	github.com/gopacket/gopacket v1.7.7
	github.com/rogpeppe/go-internal v1.16.0
	golang.org/x/crypto v0.59.0
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
)

require golang.org/x/tools v0.26.0 // indirect
