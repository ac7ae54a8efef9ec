package kdf

import (
	"testing"
	"time"
)

// Calibration never goes below the floors, however small the target.
func TestCalibrateFloors(t *testing.T) {
	t.Parallel()
	p, err := Calibrate(bg, Argon2id, time.Microsecond, MinArgon2MemoryKiB*2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil || p.Time < 2 || p.MemoryKiB < MinArgon2MemoryKiB {
		t.Fatalf("Calibrate gave %+v (%v)", p, err)
	}
	q, err := Calibrate(bg, PBKDF2SHA256, time.Microsecond, 0)
	if err != nil || q.Iterations != MinPBKDF2SHA256Iterations {
		t.Fatalf("PBKDF2 calibration gave %+v (%v)", q, err)
	}
	if _, err := Calibrate(bg, Argon2id, time.Second, 1024); err == nil {
		t.Fatal("a memory cap below the floor was accepted")
	}
	if _, err := Calibrate(bg, "md5", time.Second, 0); err == nil {
		t.Fatal("unknown algorithm accepted")
	}
}

// The iteration count scales with the target, within floor and limit.
func TestScaleIterations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		target, d    time.Duration
		probe, floor uint32
		want         uint32
	}{
		{time.Second, 10 * time.Millisecond, 20_000, 600_000, 2_000_000},
		{time.Second, time.Second, 20_000, 600_000, 600_000},
		{time.Hour, time.Millisecond, 20_000, 600_000, DefaultLimits().MaxIterations},
		{time.Second, 0, 20_000, 600_000, 600_000},
	} {
		if got := scaleIterations(tc.target, tc.d, tc.probe, tc.floor, DefaultLimits().MaxIterations); got != tc.want {
			t.Errorf("scaleIterations(%v, %v, %d, %d) = %d, want %d", tc.target, tc.d, tc.probe, tc.floor, got, tc.want)
		}
	}
}
