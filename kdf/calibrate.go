package kdf

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/argon2"
)

// Calibrate measures this host and returns parameters for alg that take
// about target per hash on one core, never below the floors of
// [Params.Validate]:
//
//   - Argon2id: p=1, memory as large as maxMemoryKiB allows (memory
//     hardness is what slows GPU attackers), then as many passes as fit the
//     target; if even one pass at maxMemoryKiB is too slow, memory is
//     halved down to the floor.
//   - PBKDF2: the iteration count that fits the target (maxMemoryKiB is
//     ignored).
//
// If the floor itself takes longer than target, Calibrate returns the floor
// parameters: it does not trade safety for speed. Run it at deployment,
// not per request (it takes several times target), and store the result in
// configuration: hashes record their own parameters, so changing them later
// only triggers rehash at login.
func Calibrate(ctx context.Context, alg Algorithm, target time.Duration, maxMemoryKiB uint32) (Params, error) {
	if target <= 0 {
		return Params{}, fmt.Errorf("kdf: calibration target must be positive")
	}
	switch alg {
	case Argon2id:
		return calibrateArgon2id(ctx, target, maxMemoryKiB)
	case PBKDF2SHA256, PBKDF2SHA512:
		return calibratePBKDF2(ctx, alg, target)
	default:
		return Params{}, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
	}
}

// measure returns the median duration of three calls of fn.
func measure(ctx context.Context, fn func()) (time.Duration, error) {
	var d [3]time.Duration
	for i := range d {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		start := time.Now()
		fn()
		d[i] = time.Since(start)
	}
	slices.Sort(d[:])
	return d[1], nil
}

func calibrateArgon2id(ctx context.Context, target time.Duration, maxMemoryKiB uint32) (Params, error) {
	p := InteractiveParams()
	if maxMemoryKiB < p.MemoryKiB {
		return Params{}, fmt.Errorf("%w: memory cap %d KiB is below the Argon2id floor of %d KiB", ErrWeakParams, maxMemoryKiB, p.MemoryKiB)
	}
	salt := make([]byte, p.SaltLen)
	run := func(q Params) (time.Duration, error) {
		return measure(ctx, func() {
			argon2.IDKey([]byte("calibration"), salt, q.Time, q.MemoryKiB, q.Threads, uint32(q.KeyLen))
		})
	}
	// The largest memory at which two passes fit the target, halving from
	// the cap; two passes is the floor row that allows the least memory.
	p.MemoryKiB = min(maxMemoryKiB, DefaultLimits().MaxMemoryKiB)
	for {
		p.Time = 2
		d, err := run(p)
		if err != nil {
			return Params{}, err
		}
		if d <= target || p.MemoryKiB/2 < MinArgon2MemoryKiB {
			if d > target {
				// Not even the cap halved to the floor fits: the floor.
				return InteractiveParams(), nil
			}
			// Add passes while they fit: time grows about linearly in t.
			perPass := d / 2
			if perPass > 0 {
				lim := DefaultLimits()
				p.Time = uint32(min(int64(target/perPass), int64(lim.MaxTime), int64(lim.MaxArgon2MemoryTime/uint64(p.MemoryKiB))))
			}
			p.Time = max(p.Time, 2)
			return p, p.Validate()
		}
		p.MemoryKiB /= 2
	}
}

func calibratePBKDF2(ctx context.Context, alg Algorithm, target time.Duration) (Params, error) {
	p := PBKDF2SHA256Params()
	if alg == PBKDF2SHA512 {
		p = PBKDF2SHA512Params()
	}
	const probe = 20_000
	salt := make([]byte, p.SaltLen)
	d, err := measure(ctx, func() {
		pbkdf2Key(alg, []byte("calibration"), salt, probe, p.KeyLen)
	})
	if err != nil {
		return Params{}, err
	}
	maxIter := DefaultLimits().MaxIterations
	if alg == PBKDF2SHA512 {
		maxIter = DefaultLimits().MaxIterationsSHA512
	}
	p.Iterations = scaleIterations(target, d, probe, p.Iterations, maxIter)
	return p, p.Validate()
}

// scaleIterations returns the iteration count that takes about target when
// probe iterations took d, between floor and ceiling (DefaultLimits'
// maximum for the digest; the presets' outputs are one block long).
func scaleIterations(target, d time.Duration, probe, floor, ceiling uint32) uint32 {
	if d <= 0 {
		return floor
	}
	n := int64(target) / int64(d) * int64(probe)
	return uint32(max(min(n, int64(ceiling)), int64(floor)))
}
