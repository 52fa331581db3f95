module github.com/doorward/doorward

go 1.26.0

require (
	github.com/gopacket/gopacket v1.7.7
	github.com/nxadm/tail v1.4.11
	github.com/rogpeppe/go-internal v1.16.0
	golang.org/x/crypto v0.59.0
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/fsnotify/fsnotify v1.6.0 // indirect
	golang.org/x/tools v0.26.0 // indirect
	gopkg.in/tomb.v1 v1.0.0-20141024135613-dd632973f1e7 // indirect
)
