// Package fwknop reads and writes fwknop's single packet authorization
// (SPA) packets, protocol 3.0.0, as the reference client (fwknop 2.x) and
// server (fwknopd) build and check them, so Doorward's server accepts the
// packets every fwknop client sends and fwknopd accepts Doorward's.
//
// A packet is, inside out:
//
//	random:b64(user):time:version:type:b64(message)[:b64(nat)][:b64(auth)][:timeout]:digest
//
// (digest = unpadded base64 of a hash of everything before its colon),
// encrypted with AES-256-CBC keyed as OpenSSL's `enc -md md5` does from the
// passphrase and an 8-byte salt ("Salted__" + salt + ciphertext), base64
// encoded without '=' padding, then MACed (encrypt-then-MAC; the HMAC is
// taken over the base64 text and appended in base64). On the wire the
// constant "U2FsdGVkX1" that base64 of "Salted__" starts with is left out,
// and the receiver puts it back before the HMAC and the decryption; a packet
// that still starts with it (or, when long, with GnuPG's "hQ") is refused,
// because fwknopd refuses it: an attacker could prepend it to a captured
// packet to get past a replay cache keyed on the wire bytes.
//
// The order of checks is the server's defence: Precheck (length, base64
// alphabet, prefixes) costs a loop over the bytes and no allocation, and
// Open computes the HMAC, in constant time, before anything is decrypted.
// GnuPG-encrypted packets are not supported.
package fwknop
