package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"
)

// samples collects latencies; safe for concurrent use.
type samples struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *samples) add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

func (s *samples) addAll(ds []time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, ds...)
	s.mu.Unlock()
}

// percentile returns the q-quantile (0 < q <= 1) of the samples by the
// nearest-rank method, or 0 when there are none.
func (s *samples) percentile(q float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return percentile(s.d, q)
}

// percentile returns the q-quantile of d by the nearest-rank method (the
// smallest value with at least q of the samples at or below it); d is
// sorted in place. Zero when d is empty.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	rank := int(math.Ceil(q * float64(len(d))))
	rank = min(max(rank, 1), len(d))
	return d[rank-1]
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func mib(kib uint64) float64 { return round3(float64(kib) / 1024) }

// The rows of the shared result format (/work/notes/bench-format.md,
// bench/README.md): a ratio of ours to a reference measured in the same
// run, or a fact.

type ratioRow struct {
	Kind           string  `json:"kind"`
	Table          string  `json:"table"`
	What           string  `json:"what"`
	OursLabel      string  `json:"ours_label"`
	Ours           float64 `json:"ours"`
	ReferenceLabel string  `json:"reference_label"`
	Reference      float64 `json:"reference"`
	Unit           string  `json:"unit"`
	LowerIsBetter  bool    `json:"lower_is_better"`
	Note           string  `json:"note,omitempty"`
}

type factRow struct {
	Kind  string  `json:"kind"`
	Table string  `json:"table"`
	What  string  `json:"what"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Note  string  `json:"note,omitempty"`
}

// rows accumulates result rows and writes them as JSON Lines.
type rows struct {
	list []any
}

func (r *rows) ratio(row ratioRow) {
	row.Kind = "ratio"
	r.list = append(r.list, row)
}

func (r *rows) fact(table, what string, value float64, unit, note string) {
	r.list = append(r.list, factRow{Kind: "fact", Table: table, What: what, Value: value, Unit: unit, Note: note})
}

// write writes one JSON object per line to w.
func (r *rows) write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, row := range r.list {
		if err := enc.Encode(row); err != nil {
			return fmt.Errorf("writing results: %w", err)
		}
	}
	return nil
}
