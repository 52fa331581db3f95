package fwknop

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
)

const (
	saltMagic = "Salted__" // OpenSSL's marker before the salt
	saltLen   = 8
	// prefixRijndael is the base64 of "Salted__" up to the last character
	// that does not depend on the salt; fwknop leaves it off the wire.
	prefixRijndael = "U2FsdGVkX1"
	// prefixGPG is the constant start of a base64 GnuPG message, which
	// fwknop also leaves off; fwknopd refuses a long packet starting with
	// it.
	prefixGPG = "hQ"
	// MaxKey is the longest Rijndael key or passphrase fwknop takes
	// (RIJNDAEL_MAX_KEYSIZE).
	MaxKey = 32
	// legacyMinKey is the length a legacy-mode passphrase is padded to.
	legacyMinKey = 16
)

// deriveKeyIV is OpenSSL's EVP_BytesToKey with MD5 and one round, as
// fwknop's rij_salt_and_iv computes it: D1 = MD5(pass‖salt), Di =
// MD5(Di-1‖pass‖salt), key = D1‖D2, IV = D3. The passphrase is used as
// given, except that legacy mode pads one shorter than 16 bytes with '0'.
func deriveKeyIV(pass, salt []byte, mode Mode) (key [32]byte, iv [16]byte) {
	var pw [MaxKey]byte
	n := copy(pw[:], pass)
	if mode == ModeLegacy {
		for ; n < legacyMinKey; n++ {
			pw[n] = '0'
		}
	}
	var d [md5.Size]byte
	var out [48]byte
	for i := 0; i < len(out); i += md5.Size {
		h := md5.New()
		if i > 0 {
			h.Write(d[:])
		}
		h.Write(pw[:n])
		h.Write(salt)
		h.Sum(d[:0])
		copy(out[i:], d[:])
	}
	copy(key[:], out[:32])
	copy(iv[:], out[32:])
	return key, iv
}

// encrypt returns "Salted__" ‖ salt ‖ AES-256-CBC(plaintext with PKCS#7
// padding), OpenSSL's `enc` layout, which fwknop produces.
func encrypt(plaintext, pass, salt []byte, mode Mode) []byte {
	key, iv := deriveKeyIV(pass, salt, mode)
	block, _ := aes.NewCipher(key[:]) // a 32-byte key cannot fail
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	out := make([]byte, 0, len(saltMagic)+saltLen+len(plaintext)+pad)
	out = append(out, saltMagic...)
	out = append(out, salt...)
	body := len(out)
	out = append(out, plaintext...)
	for range pad {
		out = append(out, byte(pad))
	}
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(out[body:], out[body:])
	return out
}

// decrypt reverses encrypt in place of data (salt header included) and
// returns the plaintext, or false when data is not a whole number of
// blocks after the header. Like fwknop's rij_decrypt it does not check the
// "Salted__" marker (the receiver restored most of it) and strips the
// padding only when it is well formed, leaving the plaintext checks to find
// a wrong key.
func decrypt(data, pass []byte, mode Mode) ([]byte, bool) {
	const hdr = len(saltMagic) + saltLen
	if len(data) < hdr+aes.BlockSize || len(data)%aes.BlockSize != 0 {
		return nil, false
	}
	key, iv := deriveKeyIV(pass, data[len(saltMagic):hdr], mode)
	block, _ := aes.NewCipher(key[:])
	pt := data[hdr:]
	cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(pt, pt)
	pad := int(pt[len(pt)-1])
	if pad <= aes.BlockSize {
		ok := true
		for _, b := range pt[len(pt)-pad:] {
			ok = ok && int(b) == pad
		}
		if ok {
			pt = pt[:len(pt)-pad]
		}
	}
	return pt, true
}
