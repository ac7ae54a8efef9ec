package storagetest

import "context"

// Arrive counts a call of a racer of the suite (one whose context came
// from race) as having reached point in its race. Calls that are not a
// racer's are not counted.
func Arrive(ctx context.Context, point string) {
	if r := raceOf(ctx); r != nil {
		r.arrive(point)
	}
}

// Await makes a racer's call wait until n calls of its race have reached
// point (see raceRun.await for when it stops waiting regardless). Calls
// that are not a racer's return at once.
func Await(ctx context.Context, point string, n int) {
	if r := raceOf(ctx); r != nil {
		r.await(ctx, point, n)
	}
}

// InRace reports whether ctx is a racer's (came from race).
func InRace(ctx context.Context) bool { return raceOf(ctx) != nil }
