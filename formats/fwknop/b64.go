package fwknop

import "encoding/base64"

// fwknop writes base64 without '=' padding everywhere (fields, ciphertext,
// digests, HMAC) and reads it with its own lenient decoder; these mirror
// both so a field decodes here exactly when it decodes in fwknopd.

// appendB64 appends the unpadded standard base64 of src.
func appendB64(dst, src []byte) []byte {
	return base64.RawStdEncoding.AppendEncode(dst, src)
}

// b64Value maps a base64 character to its value; 0xff marks the others.
var b64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// appendB64Decode decodes src as fwknop's b64_decode does: up to the first
// '=' (the rest is ignored), any other character outside the alphabet is
// an error, and bits left over at the end (a final single character) are
// dropped rather than refused.
func appendB64Decode(dst []byte, src []byte) ([]byte, bool) {
	var v uint
	for i, c := range src {
		if c == '=' {
			break
		}
		x := b64Value[c]
		if x == 0xff {
			return dst, false
		}
		v = v<<6 | uint(x)
		if i&3 != 0 {
			dst = append(dst, byte(v>>(6-2*(i&3))))
		}
	}
	return dst, true
}

// isPacketByte is fwknopd's is_base64 alphabet for a whole packet:
// letters, digits, '+', '/' and '='.
var isPacketByte = func() (t [256]bool) {
	for c := range t {
		t[c] = b64Value[c] != 0xff || c == '='
	}
	return t
}()
