// Command kdfone hashes one password once and exits: the Go side of the
// one-shot comparison in bench/kdf.sh, timed as a whole process exactly like
// the reference CLIs (argon2, openssl kdf).
//
// The password is read from standard input, as the argon2 CLI reads it.
//
//	echo -n password | kdfone -alg argon2id -m 65536 -t 2 -p 1
//	echo -n password | kdfone -impl raw -salt saltsaltsaltsalt -alg pbkdf2-sha256 -i 600000
//
// With -impl hasher (the default) it goes through the library's public path:
// kdf.New, then Hasher.Hash (NFKC normalisation, a random salt, the Gate,
// the KDF and PHC encoding) and prints the encoded hash. With -impl raw it
// calls golang.org/x/crypto/argon2.IDKey or crypto/pbkdf2.Key directly with
// -salt and prints the hex output, which must equal the reference CLI's.
package main

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/keyhold/keyhold/kdf"
)

func main() {
	alg := flag.String("alg", "argon2id", "argon2id, pbkdf2-sha256 or pbkdf2-sha512")
	impl := flag.String("impl", "hasher", "hasher (kdf.Hasher.Hash) or raw (x/crypto or crypto/pbkdf2 with -salt)")
	m := flag.Uint("m", 64*1024, "Argon2id memory in KiB")
	t := flag.Uint("t", 2, "Argon2id passes")
	p := flag.Uint("p", 1, "Argon2id lanes")
	iter := flag.Uint("i", 600_000, "PBKDF2 iterations")
	keyLen := flag.Uint("l", 32, "output length in bytes")
	salt := flag.String("salt", "saltsaltsaltsalt", "salt for -impl raw")
	self := flag.Bool("selftime", false, "print the time of the hash alone, in seconds, to stderr")
	n := flag.Int("n", 1, "hash this many times in the process (for the page faults of warm calls); the last output is printed")
	flag.Parse()

	pw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	start := time.Now()
	var out string
	for i := 0; i < max(*n, 1) && err == nil; i++ {
		switch *impl {
		case "hasher":
			out, err = hashWithHasher(kdf.Algorithm(*alg), pw, uint32(*m), uint32(*t), uint8(*p), uint32(*iter), int(*keyLen))
		case "raw":
			out, err = hashRaw(*alg, pw, []byte(*salt), uint32(*m), uint32(*t), uint8(*p), int(*iter), int(*keyLen))
		default:
			err = fmt.Errorf("unknown -impl %q", *impl)
		}
	}
	elapsed := time.Since(start)
	if err != nil {
		fail(err)
	}
	fmt.Println(out)
	if *self {
		fmt.Fprintf(os.Stderr, "%.6f seconds\n", elapsed.Seconds())
	}
}

func hashWithHasher(alg kdf.Algorithm, pw []byte, m, t uint32, p uint8, iter uint32, keyLen int) (string, error) {
	params := kdf.Params{Algorithm: alg, SaltLen: 16, KeyLen: keyLen}
	if alg == kdf.Argon2id {
		params.MemoryKiB, params.Time, params.Threads = m, t, p
	} else {
		params.Iterations = iter
	}
	h, err := kdf.New(kdf.Config{Params: params})
	if err != nil {
		return "", err
	}
	return h.Hash(context.Background(), pw)
}

func hashRaw(alg string, pw, salt []byte, m, t uint32, p uint8, iter, keyLen int) (string, error) {
	var key []byte
	var err error
	switch alg {
	case "argon2id":
		key = argon2.IDKey(pw, salt, t, m, p, uint32(keyLen))
	case "pbkdf2-sha256":
		key, err = pbkdf2.Key(sha256.New, string(pw), salt, iter, keyLen)
	case "pbkdf2-sha512":
		key, err = pbkdf2.Key(sha512.New, string(pw), salt, iter, keyLen)
	default:
		err = fmt.Errorf("unknown -alg %q", alg)
	}
	return hex.EncodeToString(key), err
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kdfone:", err)
	os.Exit(1)
}
