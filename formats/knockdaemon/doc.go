// Package knockdaemon is the wire format of Martin Krzywinski's knockdaemon
// (the Perl prototype of 2004, ../shared/specs/knockdaemon.md): a small
// record (the address to admit, the requested port, a time, flags, a
// checksum) is encrypted as Crypt::CBC 2.12 with Blowfish did it, and the
// ciphertext is spelled out as a sequence of hits on a span of 2^N closed
// ports, N bits per hit.
//
// It is shared by the client (client/knockdaemon, which encodes) and the daemon
// (detectors/knockdaemon, which decodes), and imports neither side.
//
// The pieces compose in this order, each usable on its own:
//
//	Record --Layout.Append--> plaintext --Crypt.Seal--> wire bytes --Span.Encode--> ports
//	ports  --Span.Decode--> wire bytes --Crypt.Open--> plaintext --Layout.Parse--> Record
//
// Codec ties them together with the options of one door or client.
//
// Where the prototype's behaviour is not documented, the spec marks the
// point [chosen]; each choice here is the spec's default and the other
// reading is an option:
//
//   - PORT is 2 bytes (v0.24 and later) or 1 byte (earlier knocks, the
//     manual's own example): PortWidth 2 or 1, or 0 ("auto") to encode 2
//     and accept both, told apart by length (Codec.Layouts).
//   - TIME is 1 byte (the article's "how long to keep the port open") or 4
//     (a Unix time).
//   - CHECKSUM is the byte sum mod 256 (v0.24 fixed a "mod 255 bug"); Sums
//     may also accept mod 255, for knocks of older clients.
//   - With iv = no the shared IV is 8 zero bytes unless configured.
//   - The header of a ciphertext is found by its magic: "RandomIV" (2.12's
//     header), "Salted__" (Crypt::CBC 2.17 and later), or none. Strict
//     accepts only the configured one; "Salted__", which costs a key
//     derivation, only where configured (IV = salted) or asked for
//     (AnySalted, Header = magic).
//
// Beyond the prototype, an authenticated mode (mac.go) appends an
// HMAC-SHA256 tag to every knock, and AppendSpentKeys names what a spent
// store must keep so that no replay or alteration of an accepted knock is
// accepted again.
//   - Bits are read MSB of byte 0 first, N at a time; a short last group is
//     padded with zeros on the right (TailPad, reading A) or taken as it is
//     (TailRaw, reading B); TailAuto encodes A and decodes A, then B.
package knockdaemon
