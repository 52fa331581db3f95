// Package doorman reads and writes the two on-the-wire and on-disk formats
// of J.B. Ward's doorman (doormand and its knock client, v0.8–0.9), so
// Doorward's server and client interoperate with the originals:
//
//   - the single-packet knock "<port> <group> <tag> <hash>", where hash is
//     HMAC-MD5 with key "<port> <group> <tag>" and the shared secret as the
//     message (the roles are the reverse of what one expects; see
//     ../../../shared/specs/doorman.md §1), and
//   - the anti-replay hash archive: a flat file of 24-byte records
//     {16-byte digest, int64 little-endian time} written by a 64-bit
//     doormand, so an existing archive keeps rejecting replays (§6).
//
// Parsing follows doormand's leniencies exactly (space-only tokenising,
// one trailing newline dropped, upper-case hex, the port re-normalised with
// atoi and the tag used verbatim) because a knock that the original accepts
// must be accepted here too. Nothing in this package allocates on the
// parse-and-verify path: the detector runs it for every packet an attacker
// sends.
package doorman
